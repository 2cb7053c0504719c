//! `ApplicationSession::verify_user_id` against the simulator over HTTP: the `user_id` of a
//! machine-to-machine Connect redirect is accepted only for a user who connected a vehicle to
//! the application during the login.

use std::time::{Duration, SystemTime};

use smartcar::v3::{USER_ID_SKEW, UserIdError};
use smartcar::{ApplicationSession, Client, Redirect};
use smartcar_sim::{ApproveOptions, Simulator};

fn client(sim: &Simulator) -> Client {
    let app = sim.app();
    Client::builder()
        .client_id(app.client_id)
        .client_secret(app.client_secret)
        // Registered by the simulator as a `user_id` redirect URI.
        .redirect_uri("http://localhost:8000/exchange")
        .origin(&sim.base_url())
        .build()
        .unwrap()
}

/// A login through Connect as `email`, approved in-process; the redirect's `user_id`.
fn approve(sim: &Simulator, client: &Client, email: &str) -> String {
    let auth = client.authorize().build().unwrap();
    let back = sim
        .approve(auth.url.as_str(), ApproveOptions::new().user(email))
        .unwrap();
    match client.handle_redirect(back.as_str(), &auth.state).unwrap() {
        Redirect::UserId(id) => id,
        other => panic!("expected a user id, got {other:?}"),
    }
}

#[tokio::test]
async fn a_user_who_approved_during_the_login_is_accepted() {
    let sim = Simulator::start().await.unwrap();
    let client = client(&sim);
    let app = ApplicationSession::new(&client);
    let started = SystemTime::now();
    let email = sim.users()[0].email.clone();
    let user_id = approve(&sim, &client, &email);

    let user = app
        .verify_user_id(&user_id, started, USER_ID_SKEW)
        .await
        .unwrap();
    assert_eq!(user.id(), user_id);
    assert!(!user.vehicle_ids().await.unwrap().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_user_who_approved_before_the_login_started_is_refused() {
    let sim = Simulator::builder().users(2).start().await.unwrap();
    let client = client(&sim);
    let app = ApplicationSession::new(&client);
    // The victim approved earlier ...
    let victim = sim.users()[1].clone();
    let victim_id = approve(&sim, &client, &victim.email);
    assert_eq!(victim_id, victim.id);
    // ... and a login that started two minutes later (beyond the skew) names their id.
    let later = SystemTime::now() + Duration::from_secs(120);
    let err = app
        .verify_user_id(&victim_id, later, USER_ID_SKEW)
        .await
        .unwrap_err();
    match &err {
        UserIdError::NotConnectedDuringLogin {
            user_id, newest, ..
        } => {
            assert_eq!(user_id, &victim_id);
            assert!(newest.is_some(), "the simulator dates its connections");
        }
        other => panic!("expected NotConnectedDuringLogin, got {other:?}"),
    }
    assert!(
        err.to_string().contains("do not sign this browser in"),
        "{err}"
    );

    // The same connection is accepted for a login that started before it.
    let earlier = SystemTime::now() - Duration::from_secs(60);
    app.verify_user_id(&victim_id, earlier, USER_ID_SKEW)
        .await
        .unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_and_unconnected_ids_are_refused() {
    let sim = Simulator::builder().users(2).start().await.unwrap();
    let client = client(&sim);
    let app = ApplicationSession::new(&client);
    let started = SystemTime::now() - Duration::from_secs(60);

    // A made-up id.
    let err = app
        .verify_user_id(
            "0b5e8d4c-3f7a-4b1e-9c2d-6a8f0e1d2c3b",
            started,
            USER_ID_SKEW,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, UserIdError::NotConnected { .. }), "{err:?}");
    // A real user of the platform who never connected to this application.
    let stranger = sim.users()[1].id.clone();
    let err = app
        .verify_user_id(&stranger, started, USER_ID_SKEW)
        .await
        .unwrap_err();
    assert!(matches!(err, UserIdError::NotConnected { .. }), "{err:?}");
    // A malformed id: refused before any request.
    let err = app
        .verify_user_id("../v3/users", started, USER_ID_SKEW)
        .await
        .unwrap_err();
    assert!(matches!(err, UserIdError::Check(_)), "{err:?}");
    sim.shutdown().await;
}
