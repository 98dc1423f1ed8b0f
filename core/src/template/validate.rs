//! Template validation problems (stub: being written).

/// One problem found in a template, located by file, step and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    /// File (or origin) of the template.
    pub file: String,
    /// Step the problem is in, if any.
    pub step: Option<String>,
    /// Field path, e.g. `retry.max_attempts`.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(s) = &self.step {
            write!(f, ": step `{s}`")?;
        }
        if let Some(k) = &self.field {
            write!(f, ": field `{k}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct TemplateErrors(pub Vec<TemplateProblem>);

impl TemplateErrors {
    /// One problem with no step or field.
    pub fn single(file: &str, message: impl Into<String>) -> Self {
        Self(vec![TemplateProblem { file: file.to_string(), step: None, field: None, message: message.into() }])
    }
}
