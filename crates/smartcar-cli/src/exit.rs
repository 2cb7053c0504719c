//! Errors of the tool, their exit codes and what to do about them.

use std::process::ExitCode;

use smartcar::ErrorKind;

/// The exit codes scripts can rely on (listed in `smartcar --help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 1: anything not below.
    Failure = 1,
    /// 3: a setting is missing or invalid, or nothing is connected yet.
    Configuration = 3,
    /// 4: a credential or the user's authorization was refused.
    Auth = 4,
    /// 5: the platform refused the request (vehicle state, permission, not found, input).
    Refused = 5,
    /// 6: a rate limit or the monthly budget.
    Limited = 6,
    /// 7: the platform could not be reached, timed out or failed.
    Unreachable = 7,
    /// 8: `doctor` found a problem.
    Doctor = 8,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }

    /// A short name for JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Failure => "failure",
            Exit::Configuration => "configuration",
            Exit::Auth => "auth",
            Exit::Refused => "refused",
            Exit::Limited => "limited",
            Exit::Unreachable => "unreachable",
            Exit::Doctor => "doctor",
        }
    }
}

/// A failed command: what happened, what to do, and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
    pub hint: Option<String>,
    pub request_id: Option<String>,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: message.into(),
            hint: None,
            request_id: None,
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        CliError::new(Exit::Configuration, message)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prints the error (a line of JSON on stderr with `--json`) and returns the exit code.
    pub fn report(&self, json: bool) -> ExitCode {
        if json {
            let value = serde_json::json!({
                "error": {
                    "kind": self.exit.name(),
                    "exit_code": self.exit as u8,
                    "message": self.message,
                    "hint": self.hint,
                    "request_id": self.request_id,
                }
            });
            eprintln!("{value}");
        } else {
            eprintln!("error: {}", self.message);
            if let Some(hint) = &self.hint {
                eprintln!("  what to do: {hint}");
            }
            if let Some(id) = &self.request_id {
                eprintln!("  Smartcar request id (quote it to support): {id}");
            }
        }
        self.exit.code()
    }
}

impl From<smartcar::Error> for CliError {
    fn from(e: smartcar::Error) -> Self {
        let (exit, hint) = classify(&e);
        CliError {
            exit,
            // The SDK's messages never carry a secret (tests/tests/secrets_audit.rs).
            message: e.to_string(),
            hint: Some(hint),
            request_id: e.request_id().map(str::to_owned),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::new(Exit::Failure, e.to_string())
    }
}

/// The exit code and the advice for an SDK error.
fn classify(e: &smartcar::Error) -> (Exit, String) {
    match e.kind() {
        ErrorKind::Configuration => (
            Exit::Configuration,
            "check the setting named above (`smartcar doctor --offline` shows them all)".into(),
        ),
        ErrorKind::InvalidInput => (
            Exit::Refused,
            "fix the value named above and run again".into(),
        ),
        ErrorKind::OAuth => (
            Exit::Auth,
            "the token host refused the credentials: run `smartcar doctor` to see which one \
             (client id, client secret and redirect URI must be the application's, as in the \
             Smartcar Dashboard)"
                .into(),
        ),
        ErrorKind::ReauthorizationRequired => (
            Exit::Auth,
            "the user's grant is gone or was never stored here: run `smartcar connect` again"
                .into(),
        ),
        ErrorKind::Connect => (
            Exit::Auth,
            "Connect did not grant access (denied, or no compatible vehicle): run `smartcar \
             connect` again and approve"
                .into(),
        ),
        ErrorKind::StateMismatch => (
            Exit::Auth,
            "the redirect does not belong to this Connect URL: use the URL this run printed".into(),
        ),
        ErrorKind::RateLimited | ErrorKind::BudgetExhausted => (
            Exit::Limited,
            match e.retry_after() {
                Some(d) => format!("wait {} s and run again", d.as_secs().max(1)),
                None => "wait and run again; `smartcar doctor` shows the limits".into(),
            },
        ),
        ErrorKind::Timeout | ErrorKind::Transport => (
            Exit::Unreachable,
            "check the network and the origins (`smartcar doctor` tries each host)".into(),
        ),
        ErrorKind::Api => match e.api() {
            Some(api) if e.status() == Some(401) => (
                Exit::Auth,
                format!(
                    "the platform refused the credential: run `smartcar doctor`{}",
                    api.doc_url
                        .as_ref()
                        .map(|u| format!("; see {u}"))
                        .unwrap_or_default()
                ),
            ),
            Some(api) if api.needs_reauthentication() => (
                Exit::Auth,
                "the user must grant this permission again: run `smartcar connect` with the \
                 needed --scope"
                    .into(),
            ),
            Some(_) if e.status() == Some(429) => (
                Exit::Limited,
                match e.retry_after() {
                    Some(d) => format!("Smartcar asks to wait {} s", d.as_secs().max(1)),
                    None => "wait and run again".into(),
                },
            ),
            // 501: the vehicle cannot do it (a refusal, not an outage).
            Some(api) if api.is_retryable() || e.status().is_some_and(|s| s >= 500 && s != 501) => {
                (
                    Exit::Unreachable,
                    "a temporary condition on the platform or the car: try again later".into(),
                )
            }
            Some(api) => (
                Exit::Refused,
                api.doc_url
                    .as_ref()
                    .map(|u| format!("see {u}"))
                    .unwrap_or_else(|| "see https://smartcar.com/docs/errors".into()),
            ),
            None => (Exit::Refused, "see https://smartcar.com/docs/errors".into()),
        },
        ErrorKind::TokenStore | ErrorKind::LimiterStore => (
            Exit::Failure,
            "the local state file could not be used: check the config directory's permissions \
             and free space"
                .into(),
        ),
        _ => (
            Exit::Failure,
            "run again with -v; if it persists, report it with the message above".into(),
        ),
    }
}
