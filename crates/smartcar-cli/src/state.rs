//! The tool's state file (`state.sqlite` in the config directory, mode 0600): the SDK's
//! SQLite token store for v2.0 users' tokens, and which users and vehicles each profile
//! connected. Token rows are keyed `PROFILE/USER_ID`.

use std::sync::Arc;

use smartcar::store::SqliteTokenStore;
use smartcar::store::sqlx::{self, Row as _};

use crate::config::{Settings, ensure_dir};
use crate::exit::CliError;

/// Which API a user or a vehicle is used through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    V2,
    V3,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::V2 => "v2",
            Api::V3 => "v3",
        }
    }

    fn parse(s: &str) -> Api {
        if s == "v2" { Api::V2 } else { Api::V3 }
    }
}

/// The open state file.
pub struct State {
    pub store: Arc<SqliteTokenStore>,
    profile: String,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS smartcar_cli_vehicles (
    profile TEXT NOT NULL,
    api TEXT NOT NULL,
    user_id TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,
    connected_at TEXT NOT NULL,
    PRIMARY KEY (profile, api, user_id, vehicle_id)
)";

fn db(e: sqlx::Error) -> CliError {
    CliError::new(
        crate::exit::Exit::Failure,
        format!("the state file could not be used: {e}"),
    )
    .hint("check the config directory's permissions and free space (SMARTCAR_CONFIG_DIR)")
}

impl State {
    pub async fn open(settings: &Settings) -> Result<State, CliError> {
        ensure_dir(&settings.dir)?;
        let store = SqliteTokenStore::open(settings.state_file()).await?;
        sqlx::query(SCHEMA)
            .execute(store.pool())
            .await
            .map_err(db)?;
        Ok(State {
            store: Arc::new(store),
            profile: settings.profile.clone(),
        })
    }

    /// The token store key of a v2.0 user.
    pub fn token_key(&self, user_id: &str) -> String {
        format!("{}/{user_id}", self.profile)
    }

    /// Records a user and their vehicles (an empty list records the user alone).
    pub async fn remember(
        &self,
        api: Api,
        user_id: &str,
        vehicle_ids: &[String],
    ) -> Result<(), CliError> {
        let pairs: Vec<(&str, &str)> = if vehicle_ids.is_empty() {
            vec![(user_id, "")]
        } else {
            vehicle_ids.iter().map(|v| (user_id, v.as_str())).collect()
        };
        self.remember_all(api, &pairs).await
    }

    /// Records (user, vehicle) pairs in one transaction: a fleet's connections cost one
    /// commit, not one per vehicle.
    pub async fn remember_all(&self, api: Api, pairs: &[(&str, &str)]) -> Result<(), CliError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let now = chrono::Utc::now().to_rfc3339();
        let mut tx = self.store.pool().begin().await.map_err(db)?;
        for (user_id, id) in pairs {
            sqlx::query(
                "INSERT INTO smartcar_cli_vehicles (profile, api, user_id, vehicle_id, connected_at)
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(&self.profile)
            .bind(api.as_str())
            .bind(user_id)
            .bind(id)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    /// The users this profile connected through `api`.
    pub async fn users(&self, api: Api) -> Result<Vec<String>, CliError> {
        let rows = sqlx::query(
            "SELECT DISTINCT user_id FROM smartcar_cli_vehicles WHERE profile = ? AND api = ?
             ORDER BY user_id",
        )
        .bind(&self.profile)
        .bind(api.as_str())
        .fetch_all(self.store.pool())
        .await
        .map_err(db)?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    /// Who a vehicle was connected by, and through which API.
    pub async fn owners(&self, vehicle_id: &str) -> Result<Vec<(Api, String)>, CliError> {
        let rows = sqlx::query(
            "SELECT api, user_id FROM smartcar_cli_vehicles WHERE profile = ? AND vehicle_id = ?
             ORDER BY api DESC",
        )
        .bind(&self.profile)
        .bind(vehicle_id)
        .fetch_all(self.store.pool())
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| (Api::parse(&r.get::<String, _>(0)), r.get::<String, _>(1)))
            .collect())
    }
}
