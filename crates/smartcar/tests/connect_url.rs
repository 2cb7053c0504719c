//! The Connect URL for each option, as snapshots: a change in what we send to Connect shows up
//! in review. The official SDKs send the same parameters and values for the same options (their
//! order and space encoding differ between SDKs: `+` here, as Python's and Go's).

use smartcar::config::Mode;
use smartcar::connect::ScopeRequest;
use smartcar::{Client, Permission};

fn client() -> Client {
    Client::builder()
        .client_id("8229df9f-91a0-4ff0-a1ae-a1f38ee24d07")
        .redirect_uri("https://example.com/home")
        .build()
        .unwrap()
}

#[test]
fn minimal_url() {
    let auth = client()
        .authorize()
        .scope(Permission::ReadOdometer)
        .state("0facda3319")
        .build()
        .unwrap();
    insta::assert_snapshot!(auth.url.as_str(), @"https://connect.smartcar.com/oauth/authorize?response_type=code&client_id=8229df9f-91a0-4ff0-a1ae-a1f38ee24d07&state=0facda3319&redirect_uri=https%3A%2F%2Fexample.com%2Fhome&scope=read_odometer&approval_prompt=auto&mode=live");
}

#[test]
fn every_option() {
    // The Node SDK's documented example, option for option.
    let auth = client()
        .authorize()
        .scopes([Permission::ReadOdometer, Permission::ReadVehicleInfo])
        .scope(ScopeRequest::required(Permission::ReadVin))
        .raw_scope("read_charge_events")
        .state("0facda3319")
        .force_prompt(true)
        .mode(Mode::Simulated)
        .make("TESLA")
        .single_select_vin("5YJSA1E14FF101307")
        .flag("country", "DE")
        .flag("color", "00819D")
        .user("61a3e3d2-5198-47ba-aabd-4623ce4a4042")
        .build()
        .unwrap();
    insta::assert_snapshot!(auth.url.as_str(), @"https://connect.smartcar.com/oauth/authorize?response_type=code&client_id=8229df9f-91a0-4ff0-a1ae-a1f38ee24d07&state=0facda3319&redirect_uri=https%3A%2F%2Fexample.com%2Fhome&scope=read_odometer+read_vehicle_info+required%3Aread_vin+read_charge_events&approval_prompt=force&mode=simulated&make=TESLA&single_select=true&single_select_vin=5YJSA1E14FF101307&flags=country%3ADE+color%3A00819D&user=61a3e3d2-5198-47ba-aabd-4623ce4a4042");
}

#[test]
fn single_select_without_vin_and_custom_origin() {
    let client = Client::builder()
        .client_id("id")
        .redirect_uri("http://localhost:8000/exchange")
        .origin("http://127.0.0.1:4000")
        .mode(Mode::Test)
        .build()
        .unwrap();
    let auth = client
        .authorize()
        .single_select(false)
        .state("s")
        .build()
        .unwrap();
    insta::assert_snapshot!(auth.url.as_str(), @"http://127.0.0.1:4000/oauth/authorize?response_type=code&client_id=id&state=s&redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Fexchange&approval_prompt=auto&mode=test&single_select=false");
}

#[test]
fn random_state_is_unguessable_and_returned() {
    let a = client().authorize().build().unwrap();
    let b = client().authorize().build().unwrap();
    assert_ne!(a.state.secret(), b.state.secret());
    assert!(a.state.secret().len() >= 16);
    assert!(
        a.url
            .query()
            .unwrap()
            .contains(&format!("state={}", a.state.secret()))
    );
    assert_eq!(format!("{:?}", a.state), "State([redacted])");
}

#[test]
fn invalid_options_are_rejected_before_anything_is_sent() {
    let c = client();
    let kind =
        |r: Result<smartcar::connect::AuthorizationUrl, smartcar::Error>| r.unwrap_err().kind();
    assert_eq!(
        kind(c.authorize().single_select_vin("NOTAVIN").build()),
        smartcar::ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(c.authorize().raw_scope("read odometer").build()),
        smartcar::ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(c.authorize().flag("a b", "c").build()),
        smartcar::ErrorKind::InvalidInput
    );
    let no_redirect = Client::builder().client_id("id").build().unwrap();
    let e = no_redirect.authorize().build().unwrap_err();
    assert_eq!(e.kind(), smartcar::ErrorKind::Configuration);
    assert!(e.to_string().contains("redirect"), "{e}");
}

#[test]
fn redirects_are_typed() {
    let c = client();
    let state = smartcar::connect::State::new("st");
    let user = c
        .handle_redirect(
            "http://localhost:8000/exchange?user_id=u-1&state=st",
            &state,
        )
        .unwrap();
    assert_eq!(user, smartcar::Redirect::UserId("u-1".into()));
    let e = c
        .handle_redirect(
            "?error=vehicle_incompatible&error_description=The+user%27s+vehicle+is+not+compatible.&vin=0SCAUDI012FE3B132&make=AUDI&model=A4&year=2019&state=st",
            &state,
        )
        .unwrap_err();
    let smartcar::Error::Connect(ce) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(ce.make.as_deref(), Some("AUDI"));
    assert_eq!(ce.vin.as_deref(), Some("0SCAUDI012FE3B132"));
    insta::assert_snapshot!(e.to_string(), @"Smartcar Connect returned `vehicle_incompatible`: The user's vehicle is not compatible. (vehicle: 2019 AUDI A4 0SCAUDI012FE3B132)");
    // A missing state is a mismatch, checked before the error is believed.
    assert_eq!(
        c.handle_redirect("?error=access_denied", &state)
            .unwrap_err()
            .kind(),
        smartcar::ErrorKind::StateMismatch
    );
    assert_eq!(
        c.handle_redirect("?state=st", &state).unwrap_err().kind(),
        smartcar::ErrorKind::InvalidInput
    );
}
