//! `OperationOutcome`: every failure answers one, with the FHIR issue code and the path
//! of the element at fault.

use serde_json::{json, Value};

/// FHIR `IssueType` codes used by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueCode {
    Invalid,
    Required,
    Value,
    Structure,
    NotFound,
    NotSupported,
    Forbidden,
    Login,
    Conflict,
    Throttled,
    Exception,
}

impl IssueCode {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueCode::Invalid => "invalid",
            IssueCode::Required => "required",
            IssueCode::Value => "value",
            IssueCode::Structure => "structure",
            IssueCode::NotFound => "not-found",
            IssueCode::NotSupported => "not-supported",
            IssueCode::Forbidden => "forbidden",
            IssueCode::Login => "login",
            IssueCode::Conflict => "conflict",
            IssueCode::Throttled => "throttled",
            IssueCode::Exception => "exception",
        }
    }

    /// The HTTP status an outcome led by this code answers with.
    pub fn http_status(self) -> u16 {
        match self {
            IssueCode::Invalid | IssueCode::Required | IssueCode::Value | IssueCode::Structure => {
                400
            }
            IssueCode::Login => 401,
            IssueCode::Forbidden => 403,
            IssueCode::NotFound | IssueCode::NotSupported => 404,
            IssueCode::Conflict => 409,
            IssueCode::Throttled => 429,
            IssueCode::Exception => 500,
        }
    }
}

/// One problem: its code, a message, and the FHIRPath of the element at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub code: IssueCode,
    pub diagnostics: String,
    pub expression: Option<String>,
}

impl Issue {
    pub fn new(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Self {
            code,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    /// An issue at an element: the message reads `path: what is wrong`.
    pub fn at(code: IssueCode, path: impl Into<String>, what: impl std::fmt::Display) -> Self {
        let path = path.into();
        Self {
            code,
            diagnostics: format!("{path}: {what}"),
            expression: Some(path),
        }
    }
}

/// A set of issues, all errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationOutcome {
    pub issues: Vec<Issue>,
    /// An HTTP status that overrides the one the first issue implies (a search with an
    /// unknown parameter is a bad request, though its issue is `not-supported`).
    pub status: Option<u16>,
}

impl OperationOutcome {
    pub fn new(issues: Vec<Issue>) -> Self {
        Self {
            issues,
            status: None,
        }
    }

    pub fn one(issue: Issue) -> Self {
        Self::new(vec![issue])
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The HTTP status: the override, or that of the first issue.
    pub fn http_status(&self) -> u16 {
        self.status
            .or_else(|| self.issues.first().map(|i| i.code.http_status()))
            .unwrap_or(500)
    }

    pub fn to_json(&self) -> Value {
        let issues: Vec<Value> = self
            .issues
            .iter()
            .map(|i| {
                let mut v = json!({
                    "severity": "error",
                    "code": i.code.as_str(),
                    "diagnostics": i.diagnostics,
                });
                if let Some(path) = &i.expression {
                    v["expression"] = json!([path]);
                }
                v
            })
            .collect();
        json!({ "resourceType": "OperationOutcome", "issue": issues })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_carry_code_path_and_status() {
        let o = OperationOutcome::one(Issue::at(
            IssueCode::Value,
            "Patient.identifier[0].value",
            "check digit should be X",
        ));
        assert_eq!(o.http_status(), 400);
        let v = o.to_json();
        assert_eq!(v["resourceType"], "OperationOutcome");
        assert_eq!(v["issue"][0]["code"], "value");
        assert_eq!(v["issue"][0]["severity"], "error");
        assert_eq!(
            v["issue"][0]["expression"][0],
            "Patient.identifier[0].value"
        );
        assert_eq!(
            v["issue"][0]["diagnostics"],
            "Patient.identifier[0].value: check digit should be X"
        );
        assert_eq!(
            OperationOutcome::one(Issue::new(IssueCode::Forbidden, "no")).http_status(),
            403
        );
        assert_eq!(
            OperationOutcome::one(Issue::new(IssueCode::Login, "no")).http_status(),
            401
        );
    }
}
