/**
 * The contract's messages as they cross the boundary (`proto-contract/`). Keys
 * are snake_case on the wire; these types describe the parsed JSON. Views may
 * gain fields: code reading them should tolerate members it does not know.
 */

/** Any JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Which handler runs a step, as the template declares it. */
export interface HandlerSpec {
  /** Registry key of the handler. */
  callable: string;
  /** Entry point on the handler (default `call`). */
  method: string;
  /** The template's `handler.initialization`. */
  initialization: unknown;
}

/** A checkpoint saved by an earlier attempt of a batch worker. */
export interface CheckpointMessage {
  cursor: unknown;
  data: unknown;
  saved_at_ms: number;
}

/** One claimed step, ready to run (`step_event`). */
export interface StepEvent {
  event_id: string;
  task_uuid: string;
  step_uuid: string;
  correlation_id: string;
  namespace: string;
  task_name: string;
  task_version: string;
  step_name: string;
  template_step_name: string;
  step_type: string;
  handler: HandlerSpec;
  context: unknown;
  dependency_results: Record<string, unknown>;
  attempt: number;
  max_attempts: number;
  retryable: boolean;
  timeout_ms: number;
  deadline_ms: number;
  checkpoint: CheckpointMessage | null;
}

/** Why an attempt failed, on the wire. */
export interface StepErrorMessage {
  message: string;
  error_type: string;
  retryable: boolean;
  retry_after_ms?: number;
  code?: string;
  backtrace?: string;
}

/** One handler's answer (`step_result`). */
export interface StepResultMessage {
  event_id: string;
  success: boolean;
  result?: unknown;
  error?: StepErrorMessage;
  metadata?: Record<string, unknown>;
  execution_time_ms?: number;
}

/** What `completeStepEvents` answers (`completion_report`). */
export interface CompletionReport {
  /** Results handed to the engine (`invalid_result` ones included). */
  accepted: number;
  /** Results recorded as `invalid_result` failures. */
  invalid: { event_id: string; message: string }[];
  /** Results that changed nothing (no such event held). */
  rejected: { event_id: string | null; reason: string }[];
}

/** A task request (`task_request`). */
export interface TaskRequest {
  namespace: string;
  name: string;
  version?: string;
  context?: unknown;
  idempotency_key?: string;
  correlation_id?: string;
}

/** Task states (`docs/state-machines.md`). */
export type TaskState =
  | "pending"
  | "initializing"
  | "enqueuing_steps"
  | "steps_in_process"
  | "evaluating_results"
  | "waiting_for_dependencies"
  | "waiting_for_retry"
  | "blocked_by_failures"
  | "complete"
  | "error"
  | "cancelled"
  | "resolved_manually"
  | (string & {});

/** A step of a task view. */
export interface StepView {
  step_uuid: string;
  name: string;
  state: string;
  attempts: number;
  max_attempts: number;
  handler: string;
  result: unknown;
  error: (StepErrorMessage & Record<string, unknown>) | null;
  completed_at: number | null;
  ready_at: number | null;
  [key: string]: unknown;
}

/** A task with its steps (`task_view`). */
export interface TaskView {
  task_uuid: string;
  namespace: string;
  name: string;
  version: string;
  state: TaskState;
  context: unknown;
  correlation_id: string;
  created_at: number;
  completed_at: number | null;
  steps: StepView[];
  [key: string]: unknown;
}

/** Domain event delivery modes. */
export type DomainEventMode = "fast" | "durable" | "broadcast";

/** A published domain event (`domain_event`). */
export interface DomainEvent {
  event_id: string;
  name: string;
  payload: unknown;
  mode: DomainEventMode;
  task_uuid: string | null;
  step_uuid: string | null;
  step_name: string | null;
  namespace: string | null;
  correlation_id: string | null;
  fired_at: number;
}

/** A durable domain event as an `EventSubscriber` reads it (`stored_domain_event`). */
export interface StoredDomainEvent extends DomainEvent {
  /** Position in the events table (commit order); acknowledge up to it. */
  sequence: number;
}

/** What `workerStatus` answers. */
export interface WorkerStatus {
  /** `running`, `draining` or `closed`. */
  state: "running" | "draining" | "closed";
  worker_id: string;
  namespaces: string[];
  concurrency: number;
  /** Events handed out and not yet completed or released. */
  outstanding: number;
  /** Claims held, handed out or not. */
  in_flight: number;
  claimed: number;
  succeeded: number;
  failed: number;
  rejected: number;
  write_errors: number;
  [key: string]: unknown;
}

/** What `shutdown` answers. */
export interface DrainReport {
  /** Events completed within the grace period. */
  drained: number;
  /** Steps handed back to the queue. */
  released: number;
}

/** One log record of the core. */
export interface LogRecord {
  level: "error" | "warn" | "info" | "debug" | "trace";
  target: string;
  message: string;
  fields: Record<string, unknown>;
  timestamp_ms: number;
  correlation_id?: string;
}
