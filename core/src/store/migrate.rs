//! The migrations, embedded in the binary: an installed wheel, gem or npm package
//! has no migrations folder. Files live in `migrations/<backend>/NNNN_name.sql`
//! with the same numbers on both sides; `build.rs` reruns the build when they change.

use sqlx::migrate::Migrator;

/// SQLite migrations.
pub static SQLITE: Migrator = sqlx::migrate!("../migrations/sqlite");

/// PostgreSQL migrations.
pub static POSTGRES: Migrator = sqlx::migrate!("../migrations/postgres");
