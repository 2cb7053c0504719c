//! The process the crash tests kill: resumes a session from a [`FileStore`], refreshes, reads.
//! At each step of the refresh it prints `AT <step>`; at the step named on the command line it
//! stops and waits to be killed.
//!
//! `crash_worker <origin> <client id> <store file> <step>`; the client secret is read from the
//! environment variable `CRASH_WORKER_SECRET` (never from the command line, which other users
//! of the machine can read).

use std::io::Write as _;
use std::time::Duration;

use smartcar_tests::crash::{FileStore, Step};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, origin, client_id, path, stop] = args.as_slice() else {
        eprintln!("usage: crash_worker <origin> <client id> <store file> <step>");
        std::process::exit(2);
    };
    let secret = std::env::var("CRASH_WORKER_SECRET").unwrap_or_default();
    let stop = Step::parse(stop);
    let client = smartcar::Client::builder()
        .client_id(client_id.clone())
        .client_secret(secret)
        .origin(origin)
        .build()
        .expect("client");
    let store = FileStore::with_hook(path, move |step| {
        Box::pin(async move {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "AT {}", step.name());
            let _ = out.flush();
            if Some(step) == stop {
                // Wait for the SIGKILL (bounded: a test that forgot us ends us in a minute).
                tokio::time::sleep(Duration::from_secs(60)).await;
                std::process::exit(3);
            }
        })
    });
    let session = smartcar::Session::resume(&client, std::sync::Arc::new(store), "user-1")
        .await
        .expect("resume");
    match session.access_token().await {
        Ok(_) => println!("DONE"),
        Err(e) => println!("ERROR {:?}", e.kind()),
    }
}
