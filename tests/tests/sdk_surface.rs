//! The SDK's API surface: every operation of the spec has a typed high-level method (checked
//! against the spec), and the calls not exercised elsewhere work against the simulator.

use std::collections::BTreeSet;

use futures_util::StreamExt;
use smartcar::api::open_enums::PowertrainType;
use smartcar::api::types::CompatibilityRegion;
use smartcar::management::ConnectionFilter;
use smartcar::v2::Vehicle;
use smartcar::v3::{ChargeLocation, ChargingWindow, UserV3, VehicleV3, WeeklySchedule};
use smartcar::{
    ApplicationSession, ChargeLimit, Client, Destination, ErrorKind, Permission, Redirect, Session,
};
use smartcar_api::ops;
use smartcar_sim::{ApproveOptions, Simulator};
use smartcar_tests::flow::{CALLBACK, client_for, connect};

/// Operation (an `ops` constant) → the high-level method that sends it. Each entry names the
/// operation by its generated constant, so a misspelled or removed operation fails to compile,
/// and the method in a closure that is type-checked but never run, so a renamed or removed
/// method fails to compile too; the test below fails when an operation of `ops::ALL` has no
/// entry here. Adding an operation to the spec means adding one line here.
macro_rules! covered {
    ($($op:ident => $check:expr;)*) => {{
        $( let _ = $check; )*
        [$(ops::$op),*]
    }};
}

#[test]
fn every_operation_has_a_high_level_method() {
    let covered = covered! {
        AUTHORIZE => |c: Client| c.authorize().build();
        REAUTHENTICATE => |c: Client| c.reauthenticate_url("v", None);
        EXCHANGE_TOKEN => |c: Client, code: smartcar::connect::AuthorizationCode, t: smartcar::tokens::RefreshToken| async move {
            let _ = c.exchange_code(&code).await;
            c.refresh_tokens(&t).await
        };
        REQUEST_APPLICATION_TOKEN => |c: Client| async move { c.request_application_token().await };
        GET_USER => |s: Session| async move { s.fetch_user_id().await };
        LIST_VEHICLES => |s: Session| async move { let _ = s.vehicles(); s.vehicle_ids(None, None).await };
        GET_VEHICLE_ATTRIBUTES => |v: Vehicle| async move { v.attributes().await };
        GET_VIN => |v: Vehicle| async move { v.vin().await };
        GET_ODOMETER => |v: Vehicle| async move { v.odometer().await };
        GET_LOCATION => |v: Vehicle| async move { v.location().await };
        GET_FUEL => |v: Vehicle| async move { v.fuel().await };
        GET_BATTERY => |v: Vehicle| async move { v.battery().await };
        GET_BATTERY_CAPACITY => |v: Vehicle| async move { v.battery_capacity().await };
        GET_NOMINAL_CAPACITY => |v: Vehicle| async move { v.nominal_capacity().await };
        GET_CHARGE_STATUS => |v: Vehicle| async move { v.charge().await };
        CONTROL_CHARGE => |v: Vehicle| async move { let _ = v.start_charge().await; v.stop_charge().await };
        GET_CHARGE_LIMIT => |v: Vehicle| async move { v.charge_limit().await };
        SET_CHARGE_LIMIT => |v: Vehicle| async move { v.set_charge_limit(ChargeLimit::fraction(0.8)?).await };
        GET_ENGINE_OIL => |v: Vehicle| async move { v.engine_oil().await };
        GET_TIRE_PRESSURE => |v: Vehicle| async move { v.tire_pressure().await };
        GET_LOCK_STATUS => |v: Vehicle| async move { v.lock_status().await };
        CONTROL_SECURITY => |v: Vehicle| async move { let _ = v.lock().await; v.unlock().await };
        GET_SERVICE_HISTORY => |v: Vehicle| async move { v.service_history(None, None).await };
        GET_DIAGNOSTIC_SYSTEM_STATUS => |v: Vehicle| async move { v.diagnostic_system_status().await };
        GET_DIAGNOSTIC_TROUBLE_CODES => |v: Vehicle| async move { v.diagnostic_trouble_codes().await };
        GET_PERMISSIONS => |v: Vehicle| async move { v.permissions(None, None).await };
        SEND_DESTINATION => |v: Vehicle| async move { v.set_destination(Destination::new(1.0, 2.0)?).await };
        DISCONNECT => |v: Vehicle| async move { v.disconnect().await };
        BATCH => |v: Vehicle| async move { v.batch().odometer().send().await.map(|_| ()) };
        SUBSCRIBE_WEBHOOK => |v: Vehicle| async move { v.subscribe("w").await };
        UNSUBSCRIBE_WEBHOOK => |v: Vehicle| async move { v.unsubscribe("amt", "w").await };
        GET_COMPATIBILITY_V1 => |c: Client| async move { c.compatibility_v1("v", &[], None).await };
        GET_COMPATIBILITY => |c: Client| async move { c.compatibility("v", &[], None).await };
        GET_COMPATIBILITY_MATRIX => |c: Client| async move { c.compatibility_matrix(CompatibilityRegion::Us, None, &[], &[]).await };
        LIST_CONNECTIONS => |c: Client| async move { let _ = c.management("amt").connections(ConnectionFilter::default()); c.management("amt").connections_page(&ConnectionFilter::default(), None).await };
        DELETE_CONNECTIONS => |c: Client| async move { c.management("amt").delete_connections(Some("u"), None).await };
        GET_VEHICLE_V3 => |v: VehicleV3| async move { v.info().await };
        LIST_SIGNALS => |v: VehicleV3| async move { v.signals().await };
        GET_SIGNAL => |v: VehicleV3| async move { v.signal("odometer-traveleddistance").await };
        START_CHARGE_V3 => |v: VehicleV3| async move { v.start_charge().await };
        STOP_CHARGE_V3 => |v: VehicleV3| async move { v.stop_charge().await };
        SET_CHARGE_LIMIT_V3 => |v: VehicleV3| async move { v.set_charge_limit(ChargeLimit::percent(80.0)?).await };
        LOCK_V3 => |v: VehicleV3| async move { v.lock().await };
        UNLOCK_V3 => |v: VehicleV3| async move { v.unlock().await };
        SET_DESTINATION_V3 => |v: VehicleV3| async move { v.set_destination(Destination::new(1.0, 2.0)?).await };
        GET_COMMAND_EXECUTION => |v: VehicleV3| async move { v.command_execution("e").await };
        LIST_CONNECTIONS_V3 => |a: ApplicationSession, u: UserV3| async move { let _ = u.connections().await; a.connections(None, None).await };
        GET_CONNECTION_V3 => |a: ApplicationSession| async move { a.connection("c").await };
        DELETE_CONNECTION_V3 => |a: ApplicationSession| async move { a.delete_connection("c").await };
        DELETE_USER_V3 => |u: UserV3| async move { u.delete().await };
        CREATE_SUBSCRIPTION => |a: ApplicationSession| async move { a.subscribe("w", "v", "u").await };
        LIST_SUBSCRIPTIONS => |a: ApplicationSession| async move { a.subscriptions(None, None, None).await };
        LIST_WEBHOOKS => |a: ApplicationSession| async move { a.webhooks(None, None).await };
        GET_SUBSCRIPTION => |a: ApplicationSession| async move { a.subscription("s").await };
        DELETE_SUBSCRIPTION => |a: ApplicationSession| async move { a.unsubscribe("s").await };
        GET_WEBHOOK => |a: ApplicationSession| async move { a.webhook("w").await };
        SET_DAILY_CHARGE_SCHEDULE_V3 => |v: VehicleV3, l: ChargeLocation, w: ChargingWindow| async move { let _ = v.charge_schedules().await; v.set_daily_charge_schedule(l, w).await };
        SET_WEEKLY_CHARGE_SCHEDULE_V3 => |v: VehicleV3, l: ChargeLocation, w: WeeklySchedule| async move { v.set_weekly_charge_schedule(l, &w).await };
        SET_WORKWEEK_CHARGE_SCHEDULE_V3 => |v: VehicleV3, l: ChargeLocation, w: ChargingWindow| async move { v.set_workweek_charge_schedule(l, w, w).await };
        DELETE_CHARGE_SCHEDULE_V3 => |v: VehicleV3| async move { v.delete_charge_schedule("s").await };
        LIST_COMPATIBLE_VEHICLES => |c: Client| async move { c.compatible_vehicles(&Default::default()).await };
    };
    let mut seen = BTreeSet::new();
    let twice: Vec<&str> = covered
        .iter()
        .filter(|op| !seen.insert(op.id))
        .map(|op| op.id)
        .collect();
    assert!(twice.is_empty(), "operations listed twice: {twice:?}");
    let missing: Vec<String> = ops::ALL
        .iter()
        .filter(|op| !seen.contains(op.id))
        .map(|op| format!("{} ({op})", op.id.to_uppercase()))
        .collect();
    assert!(
        missing.is_empty(),
        "operations of ops::ALL without a high-level method: add a `CONSTANT => |handle| …` \
         line naming the method that sends each one:\n{}",
        missing.join("\n")
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
        sim.request_count("GET", ops::LIST_CONNECTIONS.path) >= 3,
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
    // The application's v3 webhooks, filtered by name (case-insensitive substring).
    let webhooks = app_session.webhooks(Some("SURF"), None).await.unwrap();
    assert_eq!(webhooks.len(), 1, "{webhooks:?}");
    assert_eq!(webhooks[0].id, hook);
    assert_eq!(webhooks[0].attributes.name.as_deref(), Some("surface"));
    assert!(
        app_session
            .webhooks(None, Some("no-such-host"))
            .await
            .unwrap()
            .is_empty()
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
