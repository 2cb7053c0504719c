//! A deterministic fleet: the same seed always gives the same users, vehicles, VINs, ids and
//! readings, so tests and snapshots are stable.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::model::{App, Battery, Fuel, Powertrain, ServiceRecord, SimUser, Vehicle, World, round};

/// SplitMix64: a tiny, well-known, seedable generator. Its output for a seed never changes,
/// which is the point (a general-purpose RNG crate does not promise stable streams).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + unit * (hi - lo)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.range_f64(0.0, 1.0) < p
    }

    /// A random (version 4 layout) UUID string.
    pub fn uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The makes and models the fleet is drawn from: make, model, powertrain, World Manufacturer
/// Identifier (first three VIN characters), battery kWh or tank litres, range km at full.
pub(crate) const CATALOGUE: &[(&str, &str, Powertrain, &str, f64, f64)] = &[
    ("TESLA", "Model 3", Powertrain::Bev, "5YJ", 75.0, 490.0),
    ("TESLA", "Model Y", Powertrain::Bev, "7SA", 75.0, 455.0),
    ("FORD", "F-150", Powertrain::Ice, "1FT", 98.0, 750.0),
    (
        "FORD",
        "Mustang Mach-E",
        Powertrain::Bev,
        "3FM",
        88.0,
        450.0,
    ),
    ("TOYOTA", "Camry", Powertrain::Ice, "4T1", 60.0, 800.0),
    (
        "TOYOTA",
        "Prius Prime",
        Powertrain::Phev,
        "JTD",
        43.0,
        960.0,
    ),
    ("TOYOTA", "RAV4 Hybrid", Powertrain::Hev, "2T3", 55.0, 880.0),
    ("NISSAN", "LEAF", Powertrain::Bev, "1N4", 40.0, 240.0),
    ("BMW", "i4", Powertrain::Bev, "WBY", 81.0, 480.0),
    ("VOLKSWAGEN", "ID.4", Powertrain::Bev, "1V2", 82.0, 420.0),
    ("HYUNDAI", "IONIQ 5", Powertrain::Bev, "KM8", 77.4, 440.0),
    ("JEEP", "Wrangler 4xe", Powertrain::Phev, "1C4", 66.0, 600.0),
    ("HONDA", "Civic", Powertrain::Ice, "2HG", 47.0, 700.0),
    ("CHEVROLET", "Bolt EV", Powertrain::Bev, "1G1", 65.0, 415.0),
];

/// Plug-in hybrids' traction battery (kWh) and electric range (km).
const PHEV_BATTERY: (f64, f64) = (14.0, 60.0);

/// Smartcar's test VINs that make every request to the vehicle fail with a given error
/// (docs: errors/testing-errors). Approving a Connect `single_select_vin` with one of these
/// adds it to the user's account.
pub const TEST_ERROR_VINS: &[(&str, &str, &str)] = &[
    ("0SCLR000270BE6600", "COMPATIBILITY", "MAKE_NOT_COMPATIBLE"),
    ("0SCLR0002DC18F57F", "COMPATIBILITY", "SMARTCAR_NOT_CAPABLE"),
    ("0SCLR00024C7CDF7A", "COMPATIBILITY", "VEHICLE_NOT_CAPABLE"),
    (
        "0SCLR00026BAAA136",
        "CONNECTED_SERVICES_ACCOUNT",
        "ACCOUNT_ISSUE",
    ),
    (
        "0SCLR00021D803C7B",
        "CONNECTED_SERVICES_ACCOUNT",
        "AUTHENTICATION_FAILED",
    ),
    (
        "0SCLR00027671837B",
        "CONNECTED_SERVICES_ACCOUNT",
        "NO_VEHICLES",
    ),
    (
        "0SCLR0002B9BAF29F",
        "CONNECTED_SERVICES_ACCOUNT",
        "SUBSCRIPTION",
    ),
    (
        "0SCLR00024E29EEBD",
        "CONNECTED_SERVICES_ACCOUNT",
        "VEHICLE_MISSING",
    ),
    ("0SCLR000298A0A649", "UPSTREAM", "INVALID_DATA"),
    ("0SCLR0002A8760B72", "UPSTREAM", "KNOWN_ISSUE"),
    ("0SCLR0002C23E43AB", "UPSTREAM", "NO_RESPONSE"),
    ("0SCLR0002D4878901", "UPSTREAM", "UNKNOWN_ISSUE"),
    ("0SCLR0002E8896323", "VEHICLE_STATE", "ASLEEP"),
    ("0SCLR000221F1E672", "VEHICLE_STATE", "CHARGING_IN_PROGRESS"),
    (
        "0SCLR0002CBFC7C21",
        "VEHICLE_STATE",
        "CHARGING_PLUG_NOT_CONNECTED",
    ),
    ("0SCLR0002F8BD90B8", "VEHICLE_STATE", "DOOR_OPEN"),
    ("0SCLR00029CD9D894", "VEHICLE_STATE", "FULLY_CHARGED"),
    ("0SCLR000219CD4A2C", "VEHICLE_STATE", "HOOD_OPEN"),
    ("0SCLR00021D49E58A", "VEHICLE_STATE", "IGNITION_ON"),
    ("0SCLR00024F6EE640", "VEHICLE_STATE", "IN_MOTION"),
    (
        "0SCLR0002588A5CC1",
        "VEHICLE_STATE",
        "REMOTE_ACCESS_DISABLED",
    ),
    ("0SCLR00023C607FDB", "VEHICLE_STATE", "TRUNK_OPEN"),
    ("0SCLR0002E6CC0314", "VEHICLE_STATE", "UNKNOWN"),
    ("0SCLR000247EBF067", "VEHICLE_STATE", "UNREACHABLE"),
    (
        "0SCLR0002AF1D71A1",
        "VEHICLE_STATE",
        "VEHICLE_OFFLINE_FOR_SERVICE",
    ),
];

/// The error a test VIN forces, if it is one.
pub fn test_vin_error(vin: &str) -> Option<(&'static str, &'static str)> {
    TEST_ERROR_VINS
        .iter()
        .find(|(v, _, _)| v.eq_ignore_ascii_case(vin))
        .map(|(_, t, c)| (*t, *c))
}

/// Transliteration of VIN characters for the check digit (ISO 3779 / 49 CFR 565).
fn vin_value(c: char) -> Option<u32> {
    Some(match c {
        '0'..='9' => c as u32 - '0' as u32,
        'A' | 'J' => 1,
        'B' | 'K' | 'S' => 2,
        'C' | 'L' | 'T' => 3,
        'D' | 'M' | 'U' => 4,
        'E' | 'N' | 'V' => 5,
        'F' | 'W' => 6,
        'G' | 'P' | 'X' => 7,
        'H' | 'Y' => 8,
        'R' | 'Z' => 9,
        _ => return None, // I, O, Q and anything else are not VIN characters
    })
}

const VIN_WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

/// The check digit (position 9) a VIN must have, or `None` when the VIN has the wrong length
/// or a character VINs may not contain.
pub fn vin_check_digit(vin: &str) -> Option<char> {
    let chars: Vec<char> = vin.chars().map(|c| c.to_ascii_uppercase()).collect();
    if chars.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in chars.iter().zip(VIN_WEIGHTS) {
        sum += vin_value(*c)? * w;
    }
    Some(match sum % 11 {
        10 => 'X',
        d => char::from_digit(d, 10).unwrap_or('0'),
    })
}

/// Whether `vin` is 17 VIN characters with a correct check digit, or one of Smartcar's test
/// VINs (which do not carry one).
pub fn vin_is_valid(vin: &str) -> bool {
    if test_vin_error(vin).is_some() {
        return true;
    }
    vin_check_digit(vin)
        .is_some_and(|d| vin.chars().nth(8).map(|c| c.to_ascii_uppercase()) == Some(d))
}

/// Model-year character (position 10) for 2010–2030.
fn year_code(year: i32) -> char {
    const CODES: &[u8] = b"ABCDEFGHJKLMNPRSTVWXY";
    let i = (year - 2010).clamp(0, CODES.len() as i32 - 1) as usize;
    CODES[i] as char
}

/// A VIN with a valid check digit for `wmi` and `year`.
pub fn make_vin(rng: &mut Rng, wmi: &str, year: i32) -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
    let mut vin: Vec<char> = wmi.chars().collect();
    for _ in 0..5 {
        vin.push(*rng.pick(CHARS) as char);
    }
    vin.push('0'); // check digit placeholder
    vin.push(year_code(year));
    vin.push(*rng.pick(b"ABCDEFGHJKLMNPRSTUVWXYZ") as char); // plant
    for _ in 0..6 {
        vin.push(char::from_digit(rng.below(10) as u32, 10).unwrap_or('0'));
    }
    let s: String = vin.iter().collect();
    let digit = vin_check_digit(&s).unwrap_or('0');
    vin[8] = digit;
    vin.into_iter().collect()
}

/// Options of [`generate`].
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// RNG seed.
    pub seed: u64,
    /// Number of users (at least 1).
    pub users: usize,
    /// Number of vehicles (at least 1), spread over the users (the first user gets at least two
    /// when there are two).
    pub vehicles: usize,
    /// "Now" of the simulation at start; readings are a little older.
    pub now: DateTime<Utc>,
}

/// Builds a new vehicle from the catalogue.
pub fn make_vehicle(rng: &mut Rng, now: DateTime<Utc>) -> Vehicle {
    let &(make, model, powertrain, wmi, size, full_range) = rng.pick(CATALOGUE);
    vehicle_of(rng, now, (make, model, powertrain, wmi, size, full_range))
}

/// One brand of Connect's test mode and the test vehicle an account of that brand holds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TestBrand {
    /// The id its button carries (`button#<id>.brand-list-item`): the make, upper case, `_`
    /// for a space or a dash.
    pub(crate) id: &'static str,
    /// The name shown.
    pub(crate) name: &'static str,
    /// The test vehicle's model.
    pub(crate) model: &'static str,
    /// Its powertrain.
    pub(crate) powertrain: Powertrain,
    /// Its World Manufacturer Identifier (first three VIN characters).
    pub(crate) wmi: &'static str,
    /// Battery kWh or tank litres.
    pub(crate) size: f64,
    /// Range at full, km.
    pub(crate) range: f64,
}

const fn brand(
    id: &'static str,
    name: &'static str,
    model: &'static str,
    powertrain: Powertrain,
    wmi: &'static str,
    size: f64,
    range: f64,
) -> TestBrand {
    TestBrand {
        id,
        name,
        model,
        powertrain,
        wmi,
        size,
        range,
    }
}

/// The brands Connect's test mode lists, alphabetically, each with its test vehicle. Smartcar's
/// own test vehicles are not documented model by model; the official SDKs' end-to-end suites
/// name the Chevrolet one a Volt (a plug-in hybrid: they read its fuel and its battery) and read
/// a Ford's charge, service history and diagnostics. The other models are this simulator's
/// choice (unverified): one current model per brand, electric where the brand sells one.
#[rustfmt::skip]
pub(crate) const TEST_BRANDS: &[TestBrand] = &[
    brand("ACURA", "Acura", "RDX", Powertrain::Ice, "5J8", 65.0, 700.0),
    brand("AUDI", "Audi", "e-tron", Powertrain::Bev, "WA1", 86.5, 350.0),
    brand("BMW", "BMW", "i3", Powertrain::Bev, "WBY", 42.2, 260.0),
    brand("BUICK", "Buick", "Encore GX", Powertrain::Ice, "KL4", 50.0, 640.0),
    brand("CADILLAC", "Cadillac", "LYRIQ", Powertrain::Bev, "1GY", 102.0, 500.0),
    brand("CHEVROLET", "Chevrolet", "Volt", Powertrain::Phev, "1G1", 33.0, 676.0),
    brand("CHRYSLER", "Chrysler", "Pacifica", Powertrain::Phev, "2C4", 62.0, 840.0),
    brand("DODGE", "Dodge", "Durango", Powertrain::Ice, "1C4", 93.0, 800.0),
    brand("FORD", "Ford", "Mustang Mach-E", Powertrain::Bev, "3FM", 88.0, 450.0),
    brand("GMC", "GMC", "Sierra", Powertrain::Ice, "3GT", 91.0, 820.0),
    brand("HONDA", "Honda", "Accord", Powertrain::Ice, "1HG", 56.0, 800.0),
    brand("HYUNDAI", "Hyundai", "IONIQ 5", Powertrain::Bev, "KM8", 77.4, 440.0),
    brand("INFINITI", "INFINITI", "QX50", Powertrain::Ice, "3PC", 60.0, 700.0),
    brand("JAGUAR", "Jaguar", "I-PACE", Powertrain::Bev, "SAD", 90.0, 380.0),
    brand("JEEP", "Jeep", "Wrangler 4xe", Powertrain::Phev, "1C4", 66.0, 600.0),
    brand("KIA", "Kia", "Niro EV", Powertrain::Bev, "KND", 64.0, 385.0),
    brand("LAND_ROVER", "Land Rover", "Range Rover", Powertrain::Phev, "SAL", 90.0, 800.0),
    brand("LEXUS", "Lexus", "RX 450h", Powertrain::Hev, "2T2", 65.0, 880.0),
    brand("LINCOLN", "Lincoln", "Aviator", Powertrain::Phev, "5LM", 68.0, 700.0),
    brand("MERCEDES_BENZ", "Mercedes-Benz", "EQS", Powertrain::Bev, "W1K", 108.0, 560.0),
    brand("MINI", "MINI", "Cooper SE", Powertrain::Bev, "WMW", 28.9, 180.0),
    brand("NISSAN", "Nissan", "LEAF", Powertrain::Bev, "1N4", 40.0, 240.0),
    brand("POLESTAR", "Polestar", "2", Powertrain::Bev, "LPS", 75.0, 435.0),
    brand("PORSCHE", "Porsche", "Taycan", Powertrain::Bev, "WP0", 83.7, 400.0),
    brand("RAM", "RAM", "1500", Powertrain::Ice, "1C6", 98.0, 830.0),
    brand("RIVIAN", "Rivian", "R1T", Powertrain::Bev, "7FC", 135.0, 505.0),
    brand("SUBARU", "Subaru", "Solterra", Powertrain::Bev, "JF2", 72.8, 360.0),
    brand("TESLA", "Tesla", "Model S", Powertrain::Bev, "5YJ", 100.0, 600.0),
    brand("TOYOTA", "Toyota", "RAV4 Prime", Powertrain::Phev, "JTM", 55.0, 960.0),
    brand("VOLKSWAGEN", "Volkswagen", "ID.4", Powertrain::Bev, "1V2", 82.0, 420.0),
    brand("VOLVO", "Volvo", "XC40 Recharge", Powertrain::Bev, "YV4", 78.0, 400.0),
];

/// The test-mode brand whose button id is `id` (case-insensitive).
pub(crate) fn test_brand(id: &str) -> Option<&'static TestBrand> {
    TEST_BRANDS.iter().find(|b| b.id.eq_ignore_ascii_case(id))
}

/// The make a test-mode brand's vehicles report (`MERCEDES-BENZ`, `LAND ROVER`).
pub(crate) fn test_brand_make(brand: &TestBrand) -> String {
    brand.name.to_ascii_uppercase()
}

/// The test vehicle of `brand` for an account: drawn from `rng` (the caller seeds it from the
/// login), parked, locked and, when it plugs in, plugged in below its charge limit and not
/// charging, so that every command of Smartcar's end-to-end suites succeeds on it.
pub(crate) fn make_test_vehicle(rng: &mut Rng, now: DateTime<Utc>, brand: &TestBrand) -> Vehicle {
    let make = test_brand_make(brand);
    let entry = (
        make.as_str(),
        brand.model,
        brand.powertrain,
        brand.wmi,
        brand.size,
        brand.range,
    );
    let mut v = vehicle_of(rng, now, entry);
    v.locked = true;
    v.in_motion = false;
    if let Some(b) = v.battery.as_mut() {
        b.plugged_in = true;
        b.charging = false;
        b.charge_limit = 0.9;
        b.percent = b.percent.min(0.8);
    }
    v
}

/// A vehicle of one catalogue entry (make, model, powertrain, WMI, size, range at full).
fn vehicle_of(
    rng: &mut Rng,
    now: DateTime<Utc>,
    (make, model, powertrain, wmi, size, full_range): (&str, &str, Powertrain, &str, f64, f64),
) -> Vehicle {
    let year = 2018 + rng.below(8) as i32;
    let vin = make_vin(rng, wmi, year);
    let id = rng.uuid();
    let odometer_km = round(rng.range_f64(3_000.0, 120_000.0), 2);
    let fuel = powertrain.burns_fuel().then(|| Fuel {
        capacity_liters: size,
        percent: round(rng.range_f64(0.1, 1.0), 2),
        full_range_km: full_range,
    });
    let battery = powertrain.plugs_in().then(|| {
        let (capacity_kwh, full_range_km) = if powertrain == Powertrain::Phev {
            PHEV_BATTERY
        } else {
            (size, full_range)
        };
        let plugged_in = rng.chance(0.5);
        let percent = round(rng.range_f64(0.15, 0.95), 2);
        Battery {
            capacity_kwh,
            percent,
            full_range_km,
            nominal_determined: rng.chance(0.7),
            plugged_in,
            charging: plugged_in && rng.chance(0.6),
            charge_limit: *rng.pick(&[0.8, 0.9, 1.0]),
        }
    });
    let base_kpa = rng.range_f64(220.0, 250.0);
    let tires_kpa = [0, 1, 2, 3].map(|_| round(base_kpa + rng.range_f64(-6.0, 6.0), 1));
    let service_records = (0..rng.below(3))
        .map(|i| {
            let days = 90 + 180 * i as i64 + rng.below(60) as i64;
            ServiceRecord {
                id: format!("{}", 1000 + rng.below(9000)),
                date: now - Duration::days(days),
                odometer_km: round((odometer_km - 5_000.0 * (i as f64 + 1.0)).max(100.0), 2),
                tasks: vec![
                    rng.pick(&[
                        "Oil change",
                        "Tire rotation",
                        "Brake inspection",
                        "Software update",
                    ])
                    .to_string(),
                ],
                cost: Some((round(rng.range_f64(50.0, 400.0), 2), "USD".to_owned())),
            }
        })
        .collect();
    let dtcs = if rng.chance(0.3) {
        vec![(
            rng.pick(&["P0420", "P0300", "P302D", "C1234"]).to_string(),
            Some(now - Duration::days(rng.below(20) as i64 + 1)),
        )]
    } else {
        Vec::new()
    };
    let tpms_ok = rng.chance(0.8);
    let systems = vec![
        (
            "SYSTEM_TPMS".to_owned(),
            tpms_ok,
            (!tpms_ok).then(|| "Left rear tire sensor battery low".to_owned()),
        ),
        ("SYSTEM_AIRBAG".to_owned(), true, None),
        ("SYSTEM_ABS".to_owned(), true, None),
    ];
    Vehicle {
        id,
        vin,
        make: make.to_owned(),
        model: model.to_owned(),
        year,
        powertrain,
        mode: "live",
        odometer_km,
        latitude: round(rng.range_f64(37.2, 37.9), 4),
        longitude: round(rng.range_f64(-122.5, -121.8), 4),
        heading: round(rng.range_f64(0.0, 360.0), 1),
        fuel,
        battery,
        oil_life: powertrain
            .burns_fuel()
            .then(|| round(rng.range_f64(0.1, 1.0), 2)),
        tires_kpa,
        locked: rng.chance(0.7),
        doors_open: [false; 4],
        windows_open: [false; 4],
        in_motion: false,
        destination: None,
        service_records,
        dtcs,
        systems,
        data_age: now - Duration::seconds(rng.below(3_600) as i64 + 60),
        forced_error: None,
        charge_schedules: Vec::new(),
    }
}

/// Generates the application and the fleet.
pub fn generate(options: &FleetOptions) -> World {
    let mut rng = Rng::new(options.seed);
    let app = App {
        client_id: rng.uuid(),
        client_secret: format!("sim-secret-{}", rng.uuid()),
        redirect_uris: vec![
            "http://localhost:8000/callback".to_owned(),
            "http://localhost:8000/exchange".to_owned(),
            "http://127.0.0.1:8000/callback".to_owned(),
        ],
        amt: format!("sim-amt-{}", rng.uuid()),
        name: "Simulated App".to_owned(),
        user_id_redirect_uris: vec!["http://localhost:8000/exchange".to_owned()],
    };
    let users_n = options.users.max(1);
    let vehicles_n = options.vehicles.max(1);
    let mut users: Vec<SimUser> = (0..users_n)
        .map(|i| SimUser {
            id: rng.uuid(),
            email: if i == 0 {
                "driver@example.com".to_owned()
            } else {
                format!("driver{}@example.com", i + 1)
            },
            vehicle_ids: Vec::new(),
        })
        .collect();
    let mut vehicles = BTreeMap::new();
    for i in 0..vehicles_n {
        let v = make_vehicle(&mut rng, options.now);
        // Round-robin, but the first user gets the first two vehicles.
        let owner = if i < 2 || users_n == 1 {
            0
        } else {
            (i - 1) % users_n
        };
        users[owner].vehicle_ids.push(v.id.clone());
        vehicles.insert(v.id.clone(), v);
    }
    World {
        app,
        users,
        vehicles,
        connections: Vec::new(),
        codes: Default::default(),
        access_tokens: Default::default(),
        refresh_tokens: Default::default(),
        app_tokens: Default::default(),
        webhooks: Default::default(),
        subscriptions: Default::default(),
        next_family: 1,
        v3: Default::default(),
        vin_vehicles_created: 0,
        test_vehicles_created: 0,
    }
}

/// A fixed "epoch" for seeded simulations that want fully stable timestamps.
pub fn default_epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digit_matches_known_vins() {
        // Real VINs with published check digits.
        for vin in [
            "1HGCM82633A004352",
            "JH4KA7561PC008269",
            "1M8GDM9AXKP042788",
            "11111111111111111",
        ] {
            assert!(vin_is_valid(vin), "{vin}");
        }
        assert!(!vin_is_valid("1HGCM82643A004352"), "wrong check digit");
        assert!(
            !vin_is_valid("5YJSA1CN5DFP00101"),
            "the docs' example VIN has a wrong check digit"
        );
        assert!(!vin_is_valid("1HGCM82633A00435"), "16 characters");
        assert!(!vin_is_valid("1HGCM82633AO04352"), "letter O");
        assert!(vin_is_valid("0SCLR0002E8896323"), "Smartcar test VIN");
    }

    #[test]
    fn fleet_is_deterministic_and_valid() {
        let opts = FleetOptions {
            seed: 7,
            users: 3,
            vehicles: 8,
            now: default_epoch(),
        };
        let a = generate(&opts);
        let b = generate(&opts);
        assert_eq!(a.app.client_id, b.app.client_id);
        assert_eq!(
            a.vehicles.values().collect::<Vec<_>>(),
            b.vehicles.values().collect::<Vec<_>>()
        );
        assert_eq!(a.vehicles.len(), 8);
        assert!(a.users[0].vehicle_ids.len() >= 2);
        let owned: usize = a.users.iter().map(|u| u.vehicle_ids.len()).sum();
        assert_eq!(owned, 8);
        for v in a.vehicles.values() {
            assert!(vin_is_valid(&v.vin), "{}", v.vin);
            assert_eq!(v.fuel.is_some(), v.powertrain.burns_fuel());
            assert_eq!(v.battery.is_some(), v.powertrain.plugs_in());
        }
        let other = generate(&FleetOptions { seed: 8, ..opts });
        assert_ne!(a.app.client_id, other.app.client_id);
    }
}
