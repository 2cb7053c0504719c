//! Input validation: ids, VINs, scopes, charge limits, coordinates and URLs are checked
//! locally, with `ErrorKind::InvalidInput` (or `Configuration` for the client's own settings)
//! and a message naming what is wrong — and nothing reaches the platform.

use smartcar::connect::ExchangeOptions;
use smartcar::{
    ApplicationSession, ChargeLimit, Client, Destination, Error, ErrorKind, Permission,
};
use smartcar_sim::Simulator;
use smartcar_tests::flow::{CALLBACK, client_for, connect};

/// Ids that would change the request they are put in, or are not ids at all.
const BAD_IDS: &[&str] = &[
    "", ".", "..", "a/b", "a\\b", "a?b", "a#b", "a%2Fb", "%2e%2e", "a b", " a", "a\n", "é",
    "a\u{0}b",
];

fn invalid(what: &str, r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(e) if e.kind() == ErrorKind::InvalidInput => format!("{e}"),
        other => panic!("{what}: expected InvalidInput, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_locally() {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let (session, _store) = connect(&sim, &client).await;
    let app = ApplicationSession::new(&client);
    let vehicle = session
        .vehicle(sim.users()[0].vehicle_ids[0].clone())
        .unwrap();
    let management = client.management(sim.app().amt.clone());
    let long = "a".repeat(300);
    let sent_before = sim.total_requests();

    let mut ids: Vec<&str> = BAD_IDS.to_vec();
    ids.push(&long);
    for id in &ids {
        let message = invalid("vehicle id", session.vehicle(*id));
        assert!(message.contains("vehicle id"), "{message}");
        invalid("v3 user id", app.user(*id));
        invalid(
            "v3 vehicle id",
            app.user("93b3ea2d-6a4a-4ea5-9d1b-3a5e2c8f0b71")
                .unwrap()
                .vehicle(*id),
        );
        invalid(
            "webhook id",
            app.subscribe(id, vehicle.id(), "93b3ea2d-6a4a-4ea5-9d1b-3a5e2c8f0b71")
                .await,
        );
        invalid(
            "management delete",
            management.delete_connections(Some(id), None).await,
        );
    }
    // A path traversal would have reached another endpoint: `vehicles/../odometer`.
    assert!(session.vehicle("..").is_err());

    // VINs.
    for vin in [
        "",
        "123",
        "1HGCM82633A00435I",
        "1HGCM82633A0043#5",
        "1HGCM82633A004352X",
    ] {
        let message = invalid(
            "VIN",
            client
                .compatibility(vin, &[Permission::ReadOdometer], Some("US"))
                .await,
        );
        assert!(message.contains("VIN"), "{message}");
        invalid(
            "single-select VIN",
            client
                .authorize()
                .scopes([Permission::ReadOdometer])
                .single_select_vin(vin)
                .build(),
        );
    }

    // Scopes.
    for scope in ["Read Odometer", "read-odometer", "", "required:"] {
        let message = invalid(
            "scope",
            client
                .authorize()
                .scopes([Permission::Unknown(scope.to_owned())])
                .build(),
        );
        assert!(message.contains("scope"), "{message}");
    }

    // Charge limits: a ChargeLimit is a fraction 0.5–1 or a percentage 50–100, refused
    // before any handle sees it (the handles take nothing else: a bare number does not
    // compile, see the compile_fail examples on `set_charge_limit`).
    for limit in [0.49, 1.01, 80.0, -1.0, f64::NAN, f64::INFINITY] {
        let message = invalid("charge limit as a fraction", ChargeLimit::fraction(limit));
        assert!(message.contains("charge limit"), "{message}");
    }
    for percent in [49.9, 100.1, 0.8, f64::NAN, f64::NEG_INFINITY] {
        invalid(
            "charge limit as a percentage",
            ChargeLimit::percent(percent),
        );
    }

    // Coordinates.
    for (lat, lon) in [
        (90.1, 0.0),
        (-90.1, 0.0),
        (0.0, 180.1),
        (0.0, -180.1),
        (f64::NAN, 0.0),
        (0.0, f64::INFINITY),
    ] {
        let message = invalid("destination", Destination::new(lat, lon));
        assert!(message.contains("destination"), "{message}");
    }

    // Redirect URIs given per call.
    for uri in [
        "not a url",
        "/callback",
        "javascript:alert(1)",
        "mailto:me@example.com",
        "https://example.com/callback#fragment",
    ] {
        let message = invalid(
            "Connect redirect URI",
            client
                .authorize()
                .redirect_uri(uri)
                .scopes([Permission::ReadOdometer])
                .build(),
        );
        assert!(message.contains("redirect URI"), "{message}");
        let code = smartcar::connect::AuthorizationCode::new("a-code-that-is-never-sent");
        invalid(
            "exchange redirect URI",
            client
                .exchange_code_with(
                    &code,
                    ExchangeOptions {
                        redirect_uri: Some(uri.to_owned()),
                        ..ExchangeOptions::default()
                    },
                )
                .await,
        );
    }

    // Paging limits.
    invalid(
        "management limit",
        management
            .connections_page(
                &smartcar::management::ConnectionFilter {
                    limit: Some(0),
                    ..Default::default()
                },
                None,
            )
            .await,
    );

    assert_eq!(
        sim.total_requests(),
        sent_before,
        "nothing reached the platform"
    );

    // What is valid still works: a UUID id, a custom-scheme redirect URI of a mobile app.
    assert!(
        session
            .vehicle("36ab27d0-fd9d-4455-823a-ce30af709ffc")
            .is_ok()
    );
    client
        .authorize()
        .redirect_uri("sc4a1b01e5://exchange")
        .scopes([Permission::ReadOdometer])
        .build()
        .unwrap();
    sim.shutdown().await;
}

/// The client's own settings are configuration errors at `build()`.
#[test]
fn bad_client_settings_are_configuration_errors() {
    for (uri, _why) in [
        ("not a url", "no scheme"),
        ("javascript:alert(1)", "not a base"),
        ("https://example.com/cb#x", "fragment"),
    ] {
        let e = Client::builder()
            .client_id("id")
            .client_secret("secret-value")
            .redirect_uri(uri)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{uri}: {e}");
        assert!(e.to_string().contains("redirect_uri"), "{e}");
    }
    for origin in ["ftp://example.com", "example.com", ""] {
        let e = Client::builder()
            .client_id("id")
            .origin(origin)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Configuration, "{origin}: {e}");
    }
    let e = Client::builder().client_id(" ").build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Configuration);
}
