//! The SDK's API surface: every operation of the spec has a typed high-level method (checked
//! against the spec), and the calls not exercised elsewhere work against the simulator.

use std::collections::BTreeSet;

use futures_util::StreamExt;
use smartcar::api::open_enums::PowertrainType;
use smartcar::api::types::CompatibilityRegion;
use smartcar::{
    ApplicationSession, Client, ConnectionFilter, ErrorKind, Permission, Redirect, Session, UserV3,
    Vehicle, VehicleV3,
};
use smartcar_sim::{ApproveOptions, Simulator};
use smartcar_tests::flow::{CALLBACK, client_for, connect};
use smartcar_tests::spec::Spec;

/// `operationId` → the high-level method that sends it. Each entry names the method in a
/// closure that is type-checked but never run, so a renamed or removed method fails to compile,
/// and the test below fails when an operation of the spec is missing here.
macro_rules! covered {
    ($($op:literal => $check:expr;)*) => {{
        $( let _ = $check; )*
        [$($op),*]
    }};
}

#[test]
fn every_operation_has_a_high_level_method() {
    let covered = covered! {
        "authorize" => |c: Client| c.authorize().build();
        "reauthenticate" => |c: Client| c.reauthenticate_url("v", None);
        "exchange_token" => |c: Client, code: smartcar::AuthorizationCode, t: smartcar::RefreshToken| async move {
            let _ = c.exchange_code(&code).await;
            c.refresh_tokens(&t).await
        };
        "request_application_token" => |c: Client| async move { c.request_application_token().await };
        "get_user" => |s: Session| async move { s.user().await };
        "list_vehicles" => |s: Session| async move { let _ = s.vehicles(); s.vehicle_ids(None, None).await };
        "get_vehicle_attributes" => |v: Vehicle| async move { v.attributes().await };
        "get_vin" => |v: Vehicle| async move { v.vin().await };
        "get_odometer" => |v: Vehicle| async move { v.odometer().await };
        "get_location" => |v: Vehicle| async move { v.location().await };
        "get_fuel" => |v: Vehicle| async move { v.fuel().await };
        "get_battery" => |v: Vehicle| async move { v.battery().await };
        "get_battery_capacity" => |v: Vehicle| async move { v.battery_capacity().await };
        "get_nominal_capacity" => |v: Vehicle| async move { v.nominal_capacity().await };
        "get_charge_status" => |v: Vehicle| async move { v.charge().await };
        "control_charge" => |v: Vehicle| async move { let _ = v.start_charge().await; v.stop_charge().await };
        "get_charge_limit" => |v: Vehicle| async move { v.charge_limit().await };
        "set_charge_limit" => |v: Vehicle| async move { v.set_charge_limit(0.8).await };
        "get_engine_oil" => |v: Vehicle| async move { v.engine_oil().await };
        "get_tire_pressure" => |v: Vehicle| async move { v.tire_pressure().await };
        "get_lock_status" => |v: Vehicle| async move { v.lock_status().await };
        "control_security" => |v: Vehicle| async move { let _ = v.lock().await; v.unlock().await };
        "get_service_history" => |v: Vehicle| async move { v.service_history(None, None).await };
        "get_diagnostic_system_status" => |v: Vehicle| async move { v.diagnostic_system_status().await };
        "get_diagnostic_trouble_codes" => |v: Vehicle| async move { v.diagnostic_trouble_codes().await };
        "get_permissions" => |v: Vehicle| async move { v.permissions(None, None).await };
        "send_destination" => |v: Vehicle| async move { v.send_destination(1.0, 2.0).await };
        "disconnect" => |v: Vehicle| async move { v.disconnect().await };
        "batch" => |v: Vehicle| async move { v.batch().odometer().send().await.map(|_| ()) };
        "subscribe_webhook" => |v: Vehicle| async move { v.subscribe("w").await };
        "unsubscribe_webhook" => |v: Vehicle| async move { v.unsubscribe("amt", "w").await };
        "get_compatibility_v1" => |c: Client| async move { c.compatibility_v1("v", &[], None).await };
        "get_compatibility" => |c: Client| async move { c.compatibility("v", &[], None).await };
        "get_compatibility_matrix" => |c: Client| async move { c.compatibility_matrix(CompatibilityRegion::Us, None, &[], &[]).await };
        "list_connections" => |c: Client| async move { let _ = c.management("amt").connections(ConnectionFilter::default()); c.management("amt").connections_page(&ConnectionFilter::default(), None).await };
        "delete_connections" => |c: Client| async move { c.management("amt").delete_connections(Some("u"), None).await };
        "get_vehicle_v3" => |v: VehicleV3| async move { v.info().await };
        "list_signals" => |v: VehicleV3| async move { v.signals().await };
        "get_signal" => |v: VehicleV3| async move { v.signal("odometer-traveleddistance").await };
        "start_charge_v3" => |v: VehicleV3| async move { v.start_charge().await };
        "stop_charge_v3" => |v: VehicleV3| async move { v.stop_charge().await };
        "set_charge_limit_v3" => |v: VehicleV3| async move { v.set_charge_limit(80.0).await };
        "lock_v3" => |v: VehicleV3| async move { v.lock().await };
        "unlock_v3" => |v: VehicleV3| async move { v.unlock().await };
        "set_destination_v3" => |v: VehicleV3| async move { v.set_destination(1.0, 2.0).await };
        "get_command_execution" => |v: VehicleV3| async move { v.command_execution("e").await };
        "list_connections_v3" => |a: ApplicationSession, u: UserV3| async move { let _ = u.connections().await; a.connections(None, None).await };
        "get_connection_v3" => |a: ApplicationSession| async move { a.connection("c").await };
        "delete_connection_v3" => |a: ApplicationSession| async move { a.delete_connection("c").await };
        "delete_user_v3" => |u: UserV3| async move { u.delete().await };
        "create_subscription" => |a: ApplicationSession| async move { a.subscribe("w", "v", "u").await };
        "list_subscriptions" => |a: ApplicationSession| async move { a.subscriptions(None, None, None).await };
        "get_subscription" => |a: ApplicationSession| async move { a.subscription("s").await };
        "delete_subscription" => |a: ApplicationSession| async move { a.unsubscribe("s").await };
    };
    let covered: BTreeSet<&str> = covered.into_iter().collect();
    let spec = Spec::load();
    let ops = spec.operations();
    let in_spec: BTreeSet<&str> = ops.iter().map(|o| o.id()).collect();
    let missing: Vec<_> = in_spec.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&in_spec).collect();
    assert!(
        missing.is_empty(),
        "operations without a high-level method: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "methods listed for operations not in the spec: {stale:?}"
    );
}

#[tokio::test]
async fn compatibility_management_and_v3_resources() {
    let sim = Simulator::start().await.unwrap();
    let app = sim.app();
    let client = client_for(&sim, CALLBACK).build().unwrap();
    let (_session, _store) = connect(&sim, &client).await;
    let ev = sim
        .vehicles()
        .into_iter()
        .find(|v| v.battery.is_some())
        .unwrap();

    // Compatibility: v1, v2 and the matrix, with local validation first.
    let v1 = client
        .compatibility_v1(&ev.vin, &[Permission::ReadOdometer], None)
        .await
        .unwrap();
    assert!(v1.data.compatible);
    let v2 = client
        .compatibility(
            &ev.vin,
            &[Permission::ReadOdometer, Permission::ReadBattery],
            Some("us"),
        )
        .await
        .unwrap();
    assert!(v2.data.compatible);
    // One capability per (permission, endpoint): read_battery covers several endpoints.
    let asked: BTreeSet<_> = v2
        .data
        .capabilities
        .iter()
        .map(|c| c.permission.clone())
        .collect();
    assert_eq!(
        asked,
        BTreeSet::from([Permission::ReadOdometer, Permission::ReadBattery])
    );
    let matrix = client
        .compatibility_matrix(CompatibilityRegion::Us, Some(PowertrainType::Bev), &[], &[])
        .await
        .unwrap();
    assert!(
        matrix
            .data
            .values()
            .flatten()
            .all(|e| e.type_ == PowertrainType::Bev)
    );
    assert!(!matrix.data.is_empty());
    assert_eq!(
        client
            .compatibility("NOTAVIN", &[Permission::ReadVin], None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );

    // Management: connect every user, then stream across pages of 2.
    for user in sim.users() {
        let auth = client
            .authorize()
            .scope(Permission::ReadOdometer)
            .build()
            .unwrap();
        let redirect = sim
            .approve(auth.url.as_str(), ApproveOptions::new().user(&user.email))
            .unwrap();
        assert!(matches!(
            client
                .handle_redirect(redirect.as_str(), &auth.state)
                .unwrap(),
            Redirect::Code(_)
        ));
    }
    let mgmt = client.management(app.amt.clone());
    let filter = ConnectionFilter {
        limit: Some(2),
        ..Default::default()
    };
    let all: Vec<_> = mgmt.connections(filter).map(|c| c.unwrap()).collect().await;
    assert_eq!(all.len(), sim.vehicles().len());
    assert!(
        sim.request_count("GET", "/v2.0/management/connections") >= 3,
        "paged"
    );
    assert!(!format!("{mgmt:?}").contains(&app.amt));
    assert_eq!(
        mgmt.delete_connections(None, None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let deleted = mgmt.delete_connections(None, Some(&ev.id)).await.unwrap();
    assert_eq!(deleted.data.connections.len(), 1);
    let wrong = client.management("not-the-amt");
    assert_eq!(
        wrong
            .connections_page(&ConnectionFilter::default(), None)
            .await
            .unwrap_err()
            .status(),
        Some(401)
    );

    // v3 connections and subscriptions.
    let app_session = ApplicationSession::new(&client);
    let connections = app_session.connections(None, None).await.unwrap();
    assert_eq!(connections.len(), sim.vehicles().len() - 1);
    let one = app_session.connection(&connections[0].id).await.unwrap();
    assert_eq!(one.data.id, connections[0].id);
    let hook = sim.add_webhook(
        "http://127.0.0.1:9/unused",
        smartcar_sim::model::WebhookVersion::V3,
        "surface",
        &[],
    );
    let target = &connections[0];
    let (vehicle_id, user_id) = (
        target.relationships.vehicle.data.id.clone(),
        target.relationships.user.data.id.clone(),
    );
    app_session
        .subscribe(&hook, &vehicle_id, &user_id)
        .await
        .unwrap();
    let subs = app_session
        .subscriptions(Some(&hook), None, None)
        .await
        .unwrap();
    assert_eq!(subs.len(), 1);
    let sub = app_session.subscription(&subs[0].id).await.unwrap();
    assert_eq!(sub.data.id, subs[0].id);
    app_session.unsubscribe(&subs[0].id).await.unwrap();
    assert!(
        app_session
            .subscriptions(Some(&hook), None, None)
            .await
            .unwrap()
            .is_empty()
    );
    app_session.delete_connection(&target.id).await.unwrap();
    assert_eq!(
        app_session
            .connection(&target.id)
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    let last_user = app_session.user(sim.users()[2].id.clone()).unwrap();
    last_user.delete().await.unwrap();
    assert!(last_user.vehicle_ids().await.unwrap().is_empty());

    // Re-authentication URL.
    let reauth = client.reauthenticate_url(&ev.id, Some("st")).unwrap();
    let redirect = sim
        .approve(reauth.url.as_str(), ApproveOptions::new())
        .unwrap();
    assert_eq!(
        client
            .handle_redirect(redirect.as_str(), &reauth.state)
            .unwrap(),
        Redirect::VehicleId(ev.id.clone())
    );
    sim.shutdown().await;
}
