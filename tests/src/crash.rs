//! Helpers of the crash tests (`tests/crash_rotation.rs`): a token store in a file that
//! survives a killed process, and that announces each step of a refresh so that a test can
//! kill the process exactly there.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use smartcar::Error;
use smartcar::store::{BoxFuture, CasOutcome, TokenStore};
use smartcar::tokens::{RefreshToken, Tokens};

/// A step of a refresh, as the store sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The session loads the stored tokens; the refresh request has not been sent.
    BeforeRequest,
    /// The platform answered the refresh (it has rotated the token); nothing is saved yet.
    RotatedNotSaved,
    /// The new tokens are durably saved; the new access token has not been used yet.
    Saved,
}

impl Step {
    /// The name the worker prints (`AT <name>`).
    pub fn name(self) -> &'static str {
        match self {
            Step::BeforeRequest => "before_request",
            Step::RotatedNotSaved => "rotated_not_saved",
            Step::Saved => "saved",
        }
    }

    /// The step with this name.
    pub fn parse(name: &str) -> Option<Step> {
        [Step::BeforeRequest, Step::RotatedNotSaved, Step::Saved]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

type Hook = Arc<dyn Fn(Step) -> BoxFuture<'static, ()> + Send + Sync>;

/// A [`TokenStore`] in one JSON file (written to a temporary file, synced, then renamed, so a
/// kill leaves either the old or the new content), calling a hook at each [`Step`].
#[derive(Clone)]
pub struct FileStore {
    path: PathBuf,
    hook: Option<Hook>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn store_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::TokenStore {
        message: "file store".to_owned(),
        source: Some(Box::new(e)),
    }
}

impl FileStore {
    /// A store in `path` without hooks.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore {
            path: path.into(),
            hook: None,
        }
    }

    /// A store whose `hook` runs (and is awaited) at each step.
    pub fn with_hook(
        path: impl Into<PathBuf>,
        hook: impl Fn(Step) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    ) -> Self {
        FileStore {
            path: path.into(),
            hook: Some(Arc::new(hook)),
        }
    }

    async fn step(&self, step: Step) {
        if let Some(hook) = &self.hook {
            hook(step).await;
        }
    }

    fn read(&self) -> Result<HashMap<String, Tokens>, Error> {
        read_map(&self.path)
    }

    fn write(&self, map: &HashMap<String, Tokens>) -> Result<(), Error> {
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp).map_err(store_error)?;
        file.write_all(&serde_json::to_vec(map).map_err(store_error)?)
            .map_err(store_error)?;
        file.sync_all().map_err(store_error)?;
        std::fs::rename(&tmp, &self.path).map_err(store_error)
    }
}

fn read_map(path: &Path) -> Result<HashMap<String, Tokens>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(store_error),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
        Err(e) => Err(store_error(e)),
    }
}

impl TokenStore for FileStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Tokens>, Error>> {
        Box::pin(async move {
            self.step(Step::BeforeRequest).await;
            Ok(self.read()?.remove(key))
        })
    }

    fn save<'a>(&'a self, key: &'a str, tokens: &'a Tokens) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut map = self.read()?;
            map.insert(key.to_owned(), tokens.clone());
            self.write(&map)
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: &'a RefreshToken,
        new: &'a Tokens,
    ) -> BoxFuture<'a, Result<CasOutcome, Error>> {
        Box::pin(async move {
            self.step(Step::RotatedNotSaved).await;
            let mut map = self.read()?;
            let outcome = match map.get(key) {
                Some(current) if current.refresh_token == *expected => {
                    map.insert(key.to_owned(), new.clone());
                    self.write(&map)?;
                    CasOutcome::Swapped
                }
                other => CasOutcome::Conflict(other.cloned()),
            };
            if outcome == CasOutcome::Swapped {
                self.step(Step::Saved).await;
            }
            Ok(outcome)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut map = self.read()?;
            map.remove(key);
            self.write(&map)
        })
    }
}
