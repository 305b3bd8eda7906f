//! The contacts issue's import figures:
//! 1. a deterministic CSV of N rows (`mobile,name,city,age`): numbers of seven countries in
//!    mixed formats, ~5% invalid, ~5% duplicates of earlier rows (often in another format);
//!    every row is checked against `kloyst_contacts::phone::normalize`, and the invalid rows
//!    and a sample of the valid ones against libphonenumber itself;
//! 2. end to end: the release api-gateway, worker-pool and outbox-relay on a fresh database,
//!    the file streamed to `POST /v1/contacts/bulk?default_country=IN`, the job polled every
//!    200 ms until COMPLETED; rows/s, the job's counts against the generator's, and the peak
//!    RSS of api-gateway and worker-pool (VmRSS every 100 ms, VmHWM at the end);
//! 3. the bare database path on a separate fresh database, as the machine's reference: COPY
//!    of the normalised unique rows into an UNLOGGED staging table and one
//!    `INSERT … SELECT … ON CONFLICT DO UPDATE` into contacts, one transaction, audit triggers on;
//! 4. `GET /v1/contacts` under wrk at the imported size: the first page and a page ~halfway
//!    down the cursor chain.
//!
//! `--bare-only` runs 1 and 3 only (no services needed).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use kloyst_contacts::phone::{self, Region};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::process::{Child, Command};

use crate::{auth, median, stores};

const DEFAULT_COUNTRY: &str = "IN";
const SEED: u64 = 0x6b6c_6f79_7374; // "kloyst"
const INVALID_SHARE: f64 = 0.05;
/// The phonenumber crate costs ~50 µs per number behind a process-wide lock, so valid rows
/// are checked against it 1 in this many (the unit tests cover every country and format).
const LIBPHONENUMBER_SAMPLE: usize = 8;
const DUPLICATE_SHARE: f64 = 0.05;
const API_PORT: u16 = 23020;
const WORKER_PORT: u16 = 23121;
const RELAY_PORT: u16 = 23122;
const RSS_TARGET_MIB: f64 = 200.0;
const RATIO_TARGET: f64 = 1.5;
const P99_TARGET_MS: f64 = 20.0;

// ------------------------------------------------------------------------------------------
// 1. The file
// ------------------------------------------------------------------------------------------

/// A country the generator draws numbers from. Unique numbers are `lead` followed by a
/// scrambled counter of `counter_digits` digits (a bijection, so they never collide); every
/// such national number is a valid mobile (or fixed-or-mobile) number in libphonenumber's
/// metadata 9.0.33, which the generator checks.
struct CountrySpec {
    region: &'static str,
    calling_code: &'static str,
    /// Share of the unique numbers, in percent.
    weight: u32,
    lead: &'static str,
    counter_digits: u32,
}

const fn spec(
    region: &'static str,
    calling_code: &'static str,
    weight: u32,
    lead: &'static str,
    counter_digits: u32,
) -> CountrySpec {
    CountrySpec {
        region,
        calling_code,
        weight,
        lead,
        counter_digits,
    }
}

const COUNTRIES: [CountrySpec; 7] = [
    // 9xxxxxxxxx: all Indian mobile numbers.
    spec("IN", "91", 55, "9", 9),
    // area code + [2-9]xxxxxx (see `national`): valid NANP fixed-or-mobile numbers.
    spec("US", "1", 10, "", 0),
    // 740x xxxxxx, UK mobile (the textbook +44 7911 123456 is Guernsey, GG, for libphonenumber).
    spec("GB", "44", 8, "740", 7),
    // São Paulo mobiles with the 9th digit: 11 9xxxx-xxxx.
    spec("BR", "55", 8, "119", 8),
    // 151x xxxxxxx.
    spec("DE", "49", 6, "151", 8),
    // 812-xxxx-xxxx.
    spec("ID", "62", 8, "812", 8),
    // 50 xxx xxxx.
    spec("AE", "971", 5, "50", 7),
];

const US_AREA_CODES: [&str; 4] = ["415", "212", "646", "917"];
const US_COUNTRY: usize = 1;

/// A bijection of `0..modulus` (modulus = 2^a·5^b, multiplier coprime to it), so that
/// consecutive counters give numbers spread over the range, as real lists are.
fn scramble(counter: u64, modulus: u64) -> u64 {
    (counter.wrapping_mul(1_000_003).wrapping_add(4_242_421)) % modulus
}

/// The national significant number of the `counter`-th unique number of a country, or
/// `None` when the country's range is exhausted.
fn national(country: usize, counter: u64) -> Option<String> {
    if country == US_COUNTRY {
        let area = US_AREA_CODES[(counter % 4) as usize];
        let line = counter / 4;
        if line >= 8_000_000 {
            return None;
        }
        return Some(format!("{area}{}", 2_000_000 + scramble(line, 8_000_000)));
    }
    let spec = &COUNTRIES[country];
    let modulus = 10u64.pow(spec.counter_digits);
    if counter >= modulus {
        return None;
    }
    Some(format!(
        "{}{:0width$}",
        spec.lead,
        scramble(counter, modulus),
        width = spec.counter_digits as usize
    ))
}

/// How many ways a country's numbers are written in the file.
fn style_count(country: usize, brazil_short: bool) -> usize {
    match COUNTRIES[country].region {
        "IN" | "US" | "DE" => 4,
        "BR" if brazil_short => 4,
        _ => 3,
    }
}

/// `national` written in style `style`. The second value is true where libphonenumber (the
/// phonenumber crate) alone does not give the intended number and `normalize` has to: a
/// bare Indian number starting with 91, and Brazil without the 9th digit (only generated
/// when `normalize` maps it to the 9-digit number).
fn render(country: usize, n: &str, style: usize) -> (String, bool) {
    let text = match (COUNTRIES[country].region, style) {
        ("IN", 0) => format!("+91 {} {}", &n[..5], &n[5..]),
        ("IN", 1) => format!("0{n}"),
        // The phonenumber crate reads a bare 10-digit number that starts with 91 as +91
        // followed by the rest (9100242709 → +91 00242709, invalid): the product must handle
        // that itself, so these rows are checked against `normalize` only.
        ("IN", 2) => return (n.to_owned(), n.starts_with("91")),
        ("IN", _) => format!("+91-{n}"),
        ("US", 0) => format!("+1 ({}) {}-{}", &n[..3], &n[3..6], &n[6..]),
        ("US", 1) => format!("+1 {}-{}-{}", &n[..3], &n[3..6], &n[6..]),
        ("US", 2) => format!("+1{n}"),
        ("US", _) => format!("001 {} {} {}", &n[..3], &n[3..6], &n[6..]),
        ("GB", 0) => format!("+44 {} {}", &n[..4], &n[4..]),
        ("GB", 1) => format!("+44{n}"),
        ("GB", _) => format!("0044 {} {}", &n[..4], &n[4..]),
        ("BR", 0) => format!("+55 {} {}-{}", &n[..2], &n[2..7], &n[7..]),
        ("BR", 1) => format!("+55 ({}) {}-{}", &n[..2], &n[2..7], &n[7..]),
        ("BR", 2) => format!("+55{n}"),
        // Old 8-digit mobiles started with 6–9; others stay in the 9-digit form.
        ("BR", _) if matches!(n.as_bytes()[3], b'6'..=b'9') => {
            return (format!("+55 {} {}-{}", &n[..2], &n[3..7], &n[7..]), true)
        }
        ("BR", _) => format!("+55 {} {}-{}", &n[..2], &n[2..7], &n[7..]),
        ("DE", 0) => format!("+49 {} {}", &n[..4], &n[4..]),
        ("DE", 1) => format!("+49 {} {}", &n[..3], &n[3..]),
        ("DE", 2) => format!("+49{n}"),
        ("DE", _) => format!("0049 {} {}", &n[..4], &n[4..]),
        ("ID", 0) => format!("+62 {}-{}-{}", &n[..3], &n[3..7], &n[7..]),
        ("ID", 1) => format!("+62 {} {} {}", &n[..3], &n[3..7], &n[7..]),
        ("ID", _) => format!("+62{n}"),
        ("AE", 0) => format!("+971 {} {} {}", &n[..2], &n[2..5], &n[5..]),
        ("AE", 1) => format!("+971{n}"),
        (_, _) => format!("00971 {} {} {}", &n[..2], &n[2..5], &n[5..]),
    };
    (text, false)
}

/// Something that is not a WhatsApp-able number: blank, words, too short, too long, an
/// impossible prefix, an unknown country code, zeros, an Indian landline.
fn invalid_number(rng: &mut StdRng) -> String {
    const WORDS: [&str; 7] = [
        "n/a",
        "not a number",
        "unknown",
        "call me",
        "-",
        "none",
        "abc",
    ];
    match rng.gen_range(0..10) {
        0 => String::new(),
        1 => WORDS[rng.gen_range(0..WORDS.len())].to_owned(),
        2 => rng.gen_range(100..100_000).to_string(),
        3 => format!("+91 {}", rng.gen_range(10_000..100_000)),
        4 => format!("+91 98765 43210 {}", rng.gen_range(100..1_000)),
        // No Indian mobile starts with 12 (some start with 1600).
        5 => format!(
            "+91 12{:03} {:05}",
            rng.gen_range(0..1_000),
            rng.gen_range(0..100_000)
        ),
        6 => format!("+999 {:08}", rng.gen_range(0..100_000_000)),
        7 => "0".repeat(rng.gen_range(6..12)),
        8 => format!(
            "+91 11 2{:03} {:04}",
            rng.gen_range(0..1_000),
            rng.gen_range(0..10_000)
        ),
        _ => format!("{} abcd", rng.gen_range(10_000..100_000)),
    }
}

const FIRST_NAMES: [&str; 24] = [
    "Asha", "Rahul", "Priya", "Arjun", "Meera", "Vikram", "Ananya", "Rohan", "John", "Emily",
    "Oliver", "Amelia", "João", "Ana", "Lukas", "Lena", "Budi", "Siti", "Omar", "Fatima", "Zoë",
    "Chloé", "Sanjay", "Kavya",
];
#[rustfmt::skip]
const LAST_NAMES: [&str; 20] = [
    "Sharma", "Patel", "Iyer", "Reddy", "Nair", "Gupta", "D'Souza", "Smith", "Johnson",
    "Brown", "Silva", "Santos", "Müller", "Schmidt", "Wijaya", "Santoso", "Al Mansouri",
    "Khan", "Mehta", "Das",
];
#[rustfmt::skip]
const CITIES: [&str; 14] = [
    "Mumbai", "New Delhi", "Bengaluru", "Chennai", "Kochi, Kerala", "Pune", "São Paulo",
    "London", "Berlin", "Jakarta", "Dubai", "San Francisco", "New York", "Hyderabad",
];

/// `{"name", "city", "age"}` as the CSV carries them (all strings), and the CSV fields.
fn attributes(rng: &mut StdRng) -> [String; 3] {
    let first = FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())];
    let last = LAST_NAMES[rng.gen_range(0..LAST_NAMES.len())];
    let name = match rng.gen_range(0..20) {
        0 | 1 => format!("{last}, {first}"),
        2 => format!("{first} \"{}\" {last}", &first[..2]),
        _ => format!("{first} {last}"),
    };
    let city = CITIES[rng.gen_range(0..CITIES.len())].to_owned();
    let age = rng.gen_range(18..=80).to_string();
    [name, city, age]
}

/// A row of the valid, de-duplicated set, as the import should store it.
pub struct UniqueRow {
    /// E.164 digits without `+`.
    pub mobile: String,
    pub country: &'static str,
    /// The attributes of the row's last occurrence in the file, as JSON.
    pub attributes: String,
}

struct FileRow {
    raw: String,
    /// The unique number this row carries, or `None` for an invalid row.
    unique: Option<u32>,
    /// Written in the product-specific Brazilian format (checked with `normalize` only).
    lenient: bool,
}

pub struct Generated {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
    pub unique: Vec<UniqueRow>,
    pub invalid: u64,
    pub duplicates: u64,
    /// What `normalize` makes of the file: (accepted rows, distinct numbers).
    /// Rows checked against libphonenumber itself.
    pub libphonenumber_checked: u64,
    pub normalize_accepted: u64,
    pub normalize_distinct: u64,
    pub normalize_disagreements: u64,
    pub disagreement_examples: Vec<String>,
    pub brazil_short: bool,
    pub secs: f64,
}

impl Generated {
    fn expected_rejected(&self) -> u64 {
        self.rows - self.normalize_accepted
    }
}

fn default_region() -> Result<Region> {
    phone::parse_region(DEFAULT_COUNTRY).context("default region")
}

/// The number as libphonenumber itself sees it: `Some((e164 digits, region))` for a valid
/// mobile or fixed-or-mobile number, `None` for anything else.
fn libphonenumber_mobile(raw: &str, region: Region) -> Option<(String, String)> {
    use phonenumber::Type;
    let number = phonenumber::parse(Some(region), raw).ok()?;
    if !number.is_valid() {
        return None;
    }
    match number.number_type(&phonenumber::metadata::DATABASE) {
        Type::Mobile | Type::FixedLineOrMobile => {}
        _ => return None,
    }
    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
    let id = number.country().id()?;
    Some((
        e164.trim_start_matches('+').to_owned(),
        id.as_ref().to_owned(),
    ))
}

/// Writes the CSV and returns the expected outcome. CPU-bound: run it off the runtime.
pub fn generate(rows: u64, path: &Path) -> Result<Generated> {
    let started = Instant::now();
    let region = default_region()?;
    // The product's call on Brazilian mobiles written without the 9th digit.
    let brazil_short =
        phone::normalize("+55 11 8765-4321", region).is_ok_and(|n| n.mobile == "5511987654321");
    let mut rng = StdRng::seed_from_u64(SEED);
    let weight_total: u32 = COUNTRIES.iter().map(|c| c.weight).sum();
    let mut counters = [0u64; COUNTRIES.len()];
    let mut unique: Vec<UniqueRow> = Vec::new();
    let mut unique_country: Vec<u8> = Vec::new();
    let mut file_rows: Vec<FileRow> = Vec::with_capacity(rows as usize);
    let (mut invalid, mut duplicates) = (0u64, 0u64);

    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut csv = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, file));
    csv.write_record(["mobile", "name", "city", "age"])?;
    for _ in 0..rows {
        let draw: f64 = rng.gen();
        let attrs = attributes(&mut rng);
        let row = if draw < INVALID_SHARE {
            invalid += 1;
            FileRow {
                raw: invalid_number(&mut rng),
                unique: None,
                lenient: false,
            }
        } else if draw < INVALID_SHARE + DUPLICATE_SHARE && !unique.is_empty() {
            duplicates += 1;
            let index = rng.gen_range(0..unique.len());
            let country = unique_country[index] as usize;
            let spec = &COUNTRIES[country];
            let national = &unique[index].mobile[spec.calling_code.len()..];
            let (raw, lenient) = render(
                country,
                national,
                rng.gen_range(0..style_count(country, brazil_short)),
            );
            unique[index].attributes = attributes_json(&attrs);
            FileRow {
                raw,
                unique: Some(index as u32),
                lenient,
            }
        } else {
            let mut pick = rng.gen_range(0..weight_total);
            let country = COUNTRIES
                .iter()
                .position(|c| {
                    let hit = pick < c.weight;
                    pick = pick.saturating_sub(c.weight);
                    hit
                })
                .context("weights")?;
            let national = national(country, counters[country]).with_context(|| {
                format!(
                    "{} numbers exhausted: use fewer rows",
                    COUNTRIES[country].region
                )
            })?;
            counters[country] += 1;
            let (raw, lenient) = render(
                country,
                &national,
                rng.gen_range(0..style_count(country, brazil_short)),
            );
            unique.push(UniqueRow {
                mobile: format!("{}{national}", COUNTRIES[country].calling_code),
                country: COUNTRIES[country].region,
                attributes: attributes_json(&attrs),
            });
            unique_country.push(country as u8);
            FileRow {
                raw,
                unique: Some((unique.len() - 1) as u32),
                lenient,
            }
        };
        let [name, city, age] = &attrs;
        csv.write_record([row.raw.as_str(), name, city, age])?;
        file_rows.push(row);
    }
    csv.flush()?;
    drop(csv);
    let bytes = std::fs::metadata(path)?.len();

    let check = verify(&file_rows, &unique, region)?;
    Ok(Generated {
        path: path.to_owned(),
        rows,
        bytes,
        unique,
        invalid,
        duplicates,
        libphonenumber_checked: check.libphonenumber_checked,
        normalize_accepted: check.accepted,
        normalize_distinct: check.distinct,
        normalize_disagreements: check.disagreements,
        disagreement_examples: check.examples,
        brazil_short,
        secs: started.elapsed().as_secs_f64(),
    })
}

fn attributes_json([name, city, age]: &[String; 3]) -> String {
    json!({ "name": name, "city": city, "age": age }).to_string()
}

#[derive(Default)]
struct Check {
    /// Rows libphonenumber disagrees with the generator on (a generator bug).
    generator_errors: Vec<String>,
    libphonenumber_checked: u64,
    accepted: u64,
    distinct: u64,
    disagreements: u64,
    examples: Vec<String>,
}

/// Checks the generator's claims with libphonenumber (fatal if wrong): every invalid row and
/// every [`LIBPHONENUMBER_SAMPLE`]th valid one; and every row with `normalize` (the
/// product's verdict: counted, reported, and the basis of the expected job counts).
fn verify(rows: &[FileRow], unique: &[UniqueRow], region: Region) -> Result<Check> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let per = rows.len().div_ceil(threads).max(1);
    let parts = std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(per)
            .enumerate()
            .map(|(k, part)| scope.spawn(move || verify_part(part, k * per, unique, region)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow!("a verification thread panicked"))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let mut total = Check::default();
    let mut distinct = HashSet::new();
    for (part, seen) in parts {
        total.generator_errors.extend(part.generator_errors);
        total.libphonenumber_checked += part.libphonenumber_checked;
        total.accepted += part.accepted;
        total.disagreements += part.disagreements;
        total.examples.extend(part.examples);
        distinct.extend(seen);
    }
    total.distinct = distinct.len() as u64;
    total.examples.truncate(5);
    if !total.generator_errors.is_empty() {
        bail!(
            "libphonenumber disagrees with the generator on {} rows, e.g.:\n  {}",
            total.generator_errors.len(),
            total
                .generator_errors
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
    Ok(total)
}

fn verify_part(
    rows: &[FileRow],
    offset: usize,
    unique: &[UniqueRow],
    region: Region,
) -> (Check, HashSet<String>) {
    let mut check = Check::default();
    let mut seen = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        let intent = row.unique.map(|i| &unique[i as usize]);
        if !row.lenient && (intent.is_none() || (offset + i) % LIBPHONENUMBER_SAMPLE == 0) {
            check.libphonenumber_checked += 1;
            let found = libphonenumber_mobile(&row.raw, region);
            let wanted = intent.map(|u| (u.mobile.clone(), u.country.to_owned()));
            if found != wanted {
                check.generator_errors.push(format!(
                    "{:?}: libphonenumber {found:?}, generator {wanted:?}",
                    row.raw
                ));
            }
        }
        let normalized = phone::normalize(&row.raw, region);
        let agrees = match (&normalized, intent) {
            (Ok(n), Some(u)) => n.mobile == u.mobile && n.country.as_deref() == Some(u.country),
            (Err(_), None) => true,
            _ => false,
        };
        if !agrees {
            check.disagreements += 1;
            if check.examples.len() < 5 {
                check.examples.push(format!(
                    "{:?}: normalize {normalized:?}, generator {:?}",
                    row.raw,
                    intent.map(|u| (&u.mobile, u.country))
                ));
            }
        }
        if let Ok(n) = normalized {
            check.accepted += 1;
            seen.insert(n.mobile);
        }
    }
    (check, seen)
}

fn print_generated(g: &Generated) {
    println!(
        "import file: {} rows, {:.1} MiB ({}), generated and checked in {:.1} s ({} rows against libphonenumber, all against normalize): {} unique valid numbers, {} invalid ({:.1}%), {} duplicates ({:.1}%); default country {DEFAULT_COUNTRY}",
        g.rows,
        g.bytes as f64 / 1048576.0,
        g.path.display(),
        g.secs,
        g.libphonenumber_checked,
        g.unique.len(),
        g.invalid,
        100.0 * g.invalid as f64 / g.rows as f64,
        g.duplicates,
        100.0 * g.duplicates as f64 / g.rows as f64,
    );
    if !g.brazil_short {
        println!(
            "  note: normalize() does not map Brazilian mobiles written without the 9th digit to the 9-digit number, so that format is not generated"
        );
    }
    if g.normalize_disagreements > 0 {
        println!(
            "  WARNING: kloyst_contacts::phone::normalize disagrees with the generator (libphonenumber) on {} rows; normalize's own view: {} accepted, {} distinct. Examples:\n    {}",
            g.normalize_disagreements,
            g.normalize_accepted,
            g.normalize_distinct,
            g.disagreement_examples.join("\n    ")
        );
    } else {
        println!("  normalize() agrees with the generator on every row");
    }
}

// ------------------------------------------------------------------------------------------
// 3. The bare database path
// ------------------------------------------------------------------------------------------

struct BareTimes {
    total: f64,
    copy: f64,
    insert: f64,
    commit: f64,
}

/// COPY into an UNLOGGED staging table + one INSERT … ON CONFLICT, one transaction, as the
/// superuser, into an empty contacts table of a freshly migrated database.
async fn bare(unique: &[UniqueRow]) -> Result<BareTimes> {
    let stores = stores::fresh("kloyst_bench_import_bare").await?;
    let vendor_id: uuid::Uuid =
        sqlx::query_scalar("INSERT INTO vendors (name) VALUES ('Bench bare') RETURNING id")
            .fetch_one(&stores.pg)
            .await?;
    // The rows as COPY CSV, prepared before the clock starts.
    let vendor = vendor_id.to_string();
    let mut payload = csv::Writer::from_writer(Vec::with_capacity(unique.len() * 120));
    for row in unique {
        payload.write_record([vendor.as_str(), &row.mobile, row.country, &row.attributes])?;
    }
    let payload = payload.into_inner().context("COPY payload")?;

    let mut conn = stores.pg.acquire().await?;
    // Start both paths from clean buffers (the other path's writes are not this one's cost).
    sqlx::raw_sql("CHECKPOINT").execute(&mut *conn).await?;
    let started = Instant::now();
    let mut tx = conn.begin().await?;
    // Tagged like an import, so the audit rows are the ones production writes.
    sqlx::query(
        "SELECT set_config('app.import_job_id', $1, true), set_config('app.actor', 'user:bench', true)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .execute(&mut *tx)
    .await?;
    sqlx::raw_sql(
        "CREATE UNLOGGED TABLE import_staging (vendor_id uuid, mobile text, country text, attributes jsonb)",
    )
    .execute(&mut *tx)
    .await?;
    let mut copy = tx
        .copy_in_raw(
            "COPY import_staging (vendor_id, mobile, country, attributes) FROM STDIN (FORMAT csv)",
        )
        .await?;
    for chunk in payload.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    let copied = copy.finish().await?;
    let copy_done = Instant::now();
    let inserted = sqlx::query(
        "INSERT INTO contacts (vendor_id, mobile, country, attributes)
         SELECT vendor_id, mobile, country, attributes FROM import_staging
         ON CONFLICT (vendor_id, mobile) DO UPDATE SET attributes = contacts.attributes || EXCLUDED.attributes",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let insert_done = Instant::now();
    tx.commit().await?;
    let times = BareTimes {
        total: started.elapsed().as_secs_f64(),
        copy: (copy_done - started).as_secs_f64(),
        insert: (insert_done - copy_done).as_secs_f64(),
        commit: insert_done.elapsed().as_secs_f64(),
    };
    ensure!(
        copied == unique.len() as u64 && inserted == unique.len() as u64,
        "bare path: copied {copied}, inserted {inserted}, expected {}",
        unique.len()
    );
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM contact_changes")
        .fetch_one(&mut *conn)
        .await?;
    ensure!(
        audited == inserted as i64,
        "bare path: {audited} audit rows for {inserted} contacts"
    );
    stores.drop_redis_keys().await?;
    Ok(times)
}

// ------------------------------------------------------------------------------------------
// 2. End to end
// ------------------------------------------------------------------------------------------

struct Services {
    api: Child,
    worker: Child,
    relay: Child,
}

fn service_env(database_url: &str, prefix: &str, max_bytes: u64) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database_url),
        ("DATABASE_MAX_CONNECTIONS", "8"),
        ("REDIS_URL", "redis://127.0.0.1:6379"),
        ("REDIS_KEY_PREFIX", prefix),
        ("JWT_SECRET", "bench-jwt-secret-0123456789abcdef0123456789"),
        // A long import must not outlive the token that polls it.
        ("JWT_ACCESS_TTL", "2h"),
        ("DATA_ENCRYPTION_KEY", &"00".repeat(32)),
        ("RATE_LIMIT_API_PER_VENDOR", "100000000/min"),
        ("RATE_LIMIT_AUTH_PER_IP", "1000/min"),
        ("IMPORT_MAX_BYTES", &max_bytes.to_string()),
        ("API_REQUEST_TIMEOUT", "600s"),
        ("META_API_BASE", "http://127.0.0.1:4010"),
        ("META_ACCESS_TOKEN", "bench-meta-access-token"),
        ("META_WABA_ID", "100000000000001"),
        ("META_PHONE_NUMBER_ID", "100000000000002"),
        ("META_APP_SECRET", "bench-meta-app-secret"),
        ("META_VERIFY_TOKEN", "bench-verify-token"),
        ("RAZORPAY_API_BASE", "http://127.0.0.1:4010"),
        ("RAZORPAY_KEY_ID", "rzp_test_bench"),
        ("RAZORPAY_KEY_SECRET", "bench-razorpay-key-secret"),
        ("RAZORPAY_WEBHOOK_SECRET", "bench-razorpay-secret"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn spawn(name: &str, env: &[(String, String)], port_var: &str, port: u16) -> Result<Child> {
    let binary = std::env::current_exe()?
        .parent()
        .map(|dir| dir.join(name))
        .context("binary directory")?;
    if !binary.exists() {
        bail!(
            "{} not built: cargo build --release --bins",
            binary.display()
        );
    }
    Ok(Command::new(&binary)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env(port_var, port.to_string())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?)
}

async fn start_services(env: &[(String, String)]) -> Result<Services> {
    let services = Services {
        api: spawn("api-gateway", env, "API_PORT", API_PORT)?,
        worker: spawn("worker-pool", env, "METRICS_PORT", WORKER_PORT)?,
        relay: spawn("outbox-relay", env, "METRICS_PORT", RELAY_PORT)?,
    };
    for port in [API_PORT, WORKER_PORT, RELAY_PORT] {
        auth::wait_ready(&format!("http://127.0.0.1:{port}/readyz")).await?;
    }
    Ok(services)
}

impl Services {
    async fn stop(mut self) {
        for child in [&mut self.api, &mut self.worker, &mut self.relay] {
            let _ = child.kill().await;
        }
    }
}

/// `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .with_context(|| format!("no {field} for pid {pid}"))?
        .parse()
        .map_err(Into::into)
}

/// Samples VmRSS of `pids` every 100 ms until `stop`; returns each one's peak in MiB.
fn sample_rss(pids: Vec<u32>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<f64>> {
    tokio::spawn(async move {
        let mut peaks = vec![0.0f64; pids.len()];
        while !stop.load(Ordering::Relaxed) {
            for (peak, pid) in peaks.iter_mut().zip(&pids) {
                if let Ok(kib) = status_kib(*pid, "VmRSS") {
                    *peak = peak.max(kib / 1024.0);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        peaks
    })
}

struct EndToEnd {
    upload_secs: f64,
    total_secs: f64,
    job: Value,
    /// Peak sampled VmRSS and VmHWM at the end, MiB: (api-gateway, worker-pool).
    rss_peak: (f64, f64),
    hwm: (f64, f64),
}

async fn end_to_end(
    base: &str,
    token: &str,
    file: &Generated,
    services: &Services,
) -> Result<EndToEnd> {
    let pids = vec![
        services.api.id().context("api-gateway pid")?,
        services.worker.id().context("worker-pool pid")?,
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(pids.clone(), stop.clone());
    let client = reqwest::Client::new();

    let started = Instant::now();
    let reader = tokio::fs::File::open(&file.path).await?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
        reader,
        64 * 1024,
    ));
    let response = client
        .post(format!(
            "{base}/v1/contacts/bulk?default_country={DEFAULT_COUNTRY}"
        ))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "text/csv")
        .header(reqwest::header::CONTENT_LENGTH, file.bytes)
        .body(body)
        .send()
        .await
        .context("upload")?;
    let upload_secs = started.elapsed().as_secs_f64();
    let status = response.status();
    let text = response.text().await?;
    if status != reqwest::StatusCode::ACCEPTED {
        stop.store(true, Ordering::Relaxed);
        bail!("POST /v1/contacts/bulk answered {status}: {text}");
    }
    let accepted: Value = serde_json::from_str(&text).context("202 body")?;
    let id = accepted["id"]
        .as_str()
        .context("no job id in the 202 body")?
        .to_owned();
    println!(
        "  upload of {:.1} MiB answered 202 after {upload_secs:.2} s (state {})",
        file.bytes as f64 / 1048576.0,
        accepted["state"]
    );

    let url = format!("{base}/v1/contacts/imports/{id}");
    let mut last_report = Instant::now();
    let mut last_seen = (-1i64, Instant::now());
    let job = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let response = client.get(&url).bearer_auth(token).send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            stop.store(true, Ordering::Relaxed);
            bail!("GET /v1/contacts/imports/{id} answered {status}: {text}");
        }
        let job: Value = serde_json::from_str(&text)?;
        match job["state"].as_str() {
            Some("COMPLETED") => break job,
            Some("FAILED") => {
                stop.store(true, Ordering::Relaxed);
                bail!("import FAILED: {job}");
            }
            _ => {}
        }
        let seen = job["rows_seen"].as_i64().unwrap_or(0);
        if seen != last_seen.0 {
            last_seen = (seen, Instant::now());
        } else if last_seen.1.elapsed() > Duration::from_secs(120) {
            stop.store(true, Ordering::Relaxed);
            bail!("import made no progress for 120 s: {job}");
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            println!(
                "  … {:.0} s: {} {}% rows_seen {seen}",
                started.elapsed().as_secs_f64(),
                job["state"],
                job["progress_percent"]
            );
        }
    };
    let total_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let peaks = sampler.await?;
    let hwm_api = status_kib(pids[0], "VmHWM")? / 1024.0;
    let hwm_worker = status_kib(pids[1], "VmHWM")? / 1024.0;
    Ok(EndToEnd {
        upload_secs,
        total_secs,
        job,
        rss_peak: (peaks[0], peaks[1]),
        hwm: (hwm_api, hwm_worker),
    })
}

/// Compares the job's counts with what `normalize` makes of the file; prints them and
/// returns whether they match.
fn check_counts(job: &Value, file: &Generated) -> bool {
    let count = |field: &str| job[field].as_u64().unwrap_or(u64::MAX);
    let (seen, created, updated, rejected, duplicate) = (
        count("rows_seen"),
        count("rows_created"),
        count("rows_updated"),
        count("rows_rejected"),
        count("rows_duplicate"),
    );
    // Optional in the job's JSON: matched an existing contact without changing it.
    let unchanged = job["rows_unchanged"].as_u64().unwrap_or(0);
    let expected_dups = file.normalize_accepted - file.normalize_distinct;
    let checks = [
        ("rows_seen", seen, file.rows),
        ("rows_created", created, file.normalize_distinct),
        ("rows_rejected", rejected, file.expected_rejected()),
        // A duplicate whose first occurrence was committed by an earlier chunk is an update
        // (or unchanged).
        (
            "rows_duplicate + rows_updated + rows_unchanged",
            duplicate.saturating_add(updated).saturating_add(unchanged),
            expected_dups,
        ),
    ];
    println!(
        "  job counts: seen {seen}, created {created}, updated {updated}, unchanged {unchanged}, rejected {rejected} ({:.1}%), duplicate {duplicate}",
        100.0 * rejected as f64 / seen.max(1) as f64
    );
    let mut ok = true;
    for (name, got, want) in checks {
        if got != want {
            ok = false;
            println!("  MISMATCH {name}: job {got}, expected {want}");
        }
    }
    if ok {
        println!("  counts match the generator (via normalize)");
    }
    ok
}

// ------------------------------------------------------------------------------------------
// 4. GET /v1/contacts at size
// ------------------------------------------------------------------------------------------

/// The latency target is judged at a moderate load; the saturated figures (where queueing
/// behind two busy cores dominates p99) are reported beside it.
const LATENCY_CONNECTIONS: u32 = 4;
const SATURATION_CONNECTIONS: u32 = 16;

struct ListFigures {
    first: auth::WrkResult,
    first_saturated: auth::WrkResult,
    deep: auth::WrkResult,
    deep_saturated: auth::WrkResult,
    deep_pages: usize,
    walk_secs: f64,
}

async fn list_latency(base: &str, token: &str, contacts: usize) -> Result<ListFigures> {
    let first_url = format!("{base}/v1/contacts?limit=50");
    let first = auth::wrk(&first_url, Some(token), 10, LATENCY_CONNECTIONS).await?;
    let first_saturated = auth::wrk(&first_url, Some(token), 10, SATURATION_CONNECTIONS).await?;
    for (load, figures) in [
        (LATENCY_CONNECTIONS, &first),
        (SATURATION_CONNECTIONS, &first_saturated),
    ] {
        println!(
            "  wrk -c{load} GET /v1/contacts?limit=50 (first page): {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            figures.rps, figures.p50_ms, figures.p99_ms
        );
    }
    // Halfway down the cursor chain (2,500 pages of 200 at 1M contacts).
    let pages = (contacts / 400).clamp(1, 2_500);
    let client = reqwest::Client::new();
    let mut cursor: Option<String> = None;
    let started = Instant::now();
    let mut walked = 0;
    for _ in 0..pages {
        let mut url = reqwest::Url::parse(&format!("{base}/v1/contacts?limit=200"))?;
        if let Some(c) = &cursor {
            url.query_pairs_mut().append_pair("cursor", c);
        }
        let response = client.get(url).bearer_auth(token).send().await?;
        let status = response.status();
        let page: Value = response.json().await?;
        ensure!(
            status.is_success(),
            "GET /v1/contacts answered {status}: {page}"
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        walked += 1;
    }
    let walk_secs = started.elapsed().as_secs_f64();
    let cursor = cursor.context("no next_cursor on the first page")?;
    let mut url = reqwest::Url::parse(&format!("{base}/v1/contacts?limit=50"))?;
    url.query_pairs_mut().append_pair("cursor", &cursor);
    let deep = auth::wrk(url.as_str(), Some(token), 10, LATENCY_CONNECTIONS).await?;
    let deep_saturated = auth::wrk(url.as_str(), Some(token), 10, SATURATION_CONNECTIONS).await?;
    println!(
        "  walked {walked} pages of 200 in {walk_secs:.1} s ({:.1} ms/page)",
        1000.0 * walk_secs / walked.max(1) as f64
    );
    for (load, figures) in [
        (LATENCY_CONNECTIONS, &deep),
        (SATURATION_CONNECTIONS, &deep_saturated),
    ] {
        println!(
            "  wrk -c{load} GET /v1/contacts?limit=50&cursor=<page {walked}×200>: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            figures.rps, figures.p50_ms, figures.p99_ms
        );
    }
    Ok(ListFigures {
        first,
        first_saturated,
        deep,
        deep_saturated,
        deep_pages: walked,
        walk_secs,
    })
}

// ------------------------------------------------------------------------------------------
// The scenario
// ------------------------------------------------------------------------------------------

pub async fn run(rows: u64, runs: usize, bare_only: bool) -> Result<()> {
    ensure!(rows > 0 && runs > 0, "--rows and --runs must be positive");
    let path = std::env::temp_dir().join(format!("kloyst-bench-import-{rows}.csv"));
    let file = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || generate(rows, &path)).await??
    };
    print_generated(&file);
    let result = measure(&file, runs, bare_only).await;
    let _ = std::fs::remove_file(&path);
    result
}

async fn measure(file: &Generated, runs: usize, bare_only: bool) -> Result<()> {
    let unique = file.unique.len();
    let mut bare_secs = Vec::new();
    let mut e2e_secs = Vec::new();
    let mut uploads = Vec::new();
    let (mut api_peak, mut worker_peak, mut api_hwm, mut worker_hwm) =
        (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut counts_ok = true;
    let mut list = None;
    for run in 1..=runs {
        if !bare_only {
            let stores = stores::fresh("kloyst_bench_import").await?;
            let max_bytes = (file.bytes * 2).max(1 << 30);
            let env = service_env(&stores.database_url, &stores.prefix, max_bytes);
            let services = start_services(&env).await?;
            let base = format!("http://127.0.0.1:{API_PORT}");
            let token = auth::onboard(&base, &stores.pg).await?;
            println!("import run {run}/{runs}, end to end:");
            sqlx::raw_sql("CHECKPOINT").execute(&stores.pg).await?;
            let e2e = end_to_end(&base, &token, file, &services).await?;
            println!(
                "  {} rows to COMPLETED in {:.2} s = {:.0} rows/s (upload {:.2} s); peak RSS api-gateway {:.1} MiB (VmHWM {:.1}), worker-pool {:.1} MiB (VmHWM {:.1}) (target < {RSS_TARGET_MIB} MB each)",
                file.rows,
                e2e.total_secs,
                file.rows as f64 / e2e.total_secs,
                e2e.upload_secs,
                e2e.rss_peak.0,
                e2e.hwm.0,
                e2e.rss_peak.1,
                e2e.hwm.1,
            );
            counts_ok &= check_counts(&e2e.job, file);
            e2e_secs.push(e2e.total_secs);
            uploads.push(e2e.upload_secs);
            api_peak = api_peak.max(e2e.rss_peak.0);
            worker_peak = worker_peak.max(e2e.rss_peak.1);
            api_hwm = api_hwm.max(e2e.hwm.0);
            worker_hwm = worker_hwm.max(e2e.hwm.1);
            if run == runs {
                // Measure the steady state, not autovacuum catching up with the import's
                // million contacts and audit rows, nor the checkpointer flushing its writes.
                let vacuum = Instant::now();
                // Two messages: VACUUM refuses to run in a multi-statement one.
                sqlx::raw_sql("VACUUM ANALYZE").execute(&stores.pg).await?;
                sqlx::raw_sql("CHECKPOINT").execute(&stores.pg).await?;
                println!(
                    "GET /v1/contacts at {} contacts (after VACUUM ANALYZE and CHECKPOINT, {:.1} s):",
                    file.normalize_distinct,
                    vacuum.elapsed().as_secs_f64()
                );
                list = Some(list_latency(&base, &token, file.normalize_distinct as usize).await?);
            }
            services.stop().await;
            stores.drop_redis_keys().await?;
        }
        let times = bare(&file.unique).await?;
        println!(
            "import run {run}/{runs}, bare database path: COPY {unique} normalised rows into UNLOGGED staging + INSERT … ON CONFLICT into contacts (one transaction, audit triggers on): {:.2} s = {:.0} rows/s (COPY {:.2} s, INSERT {:.2} s, COMMIT {:.2} s)",
            times.total,
            unique as f64 / times.total,
            times.copy,
            times.insert,
            times.commit,
        );
        bare_secs.push(times.total);
    }

    let bare = median(bare_secs);
    println!();
    println!(
        "=== import summary ({} rows, {runs} run(s), medians) ===",
        file.rows
    );
    println!(
        "file: {:.1} MiB, {unique} unique valid, {} invalid, {} duplicates",
        file.bytes as f64 / 1048576.0,
        file.invalid,
        file.duplicates
    );
    println!(
        "bare database path (COPY + INSERT … ON CONFLICT, {unique} rows): {bare:.2} s = {:.0} rows/s",
        unique as f64 / bare
    );
    if bare_only {
        println!("end-to-end path and GET /v1/contacts: skipped (--bare-only)");
        return Ok(());
    }
    let e2e = median(e2e_secs);
    let ratio = e2e / bare;
    println!(
        "end to end (upload → COMPLETED): {e2e:.2} s = {:.0} rows/s (upload {:.2} s)",
        file.rows as f64 / e2e,
        median(uploads)
    );
    println!(
        "ratio end-to-end / bare: {ratio:.2} (target <= {RATIO_TARGET}) {}",
        verdict(ratio <= RATIO_TARGET)
    );
    println!(
        "peak RSS api-gateway: {api_peak:.1} MiB sampled during the import, VmHWM {api_hwm:.1} MiB (lifetime, includes the registration's Argon2 hash) (target < {RSS_TARGET_MIB} MB) {}",
        verdict(api_hwm.max(api_peak) < RSS_TARGET_MIB)
    );
    println!(
        "peak RSS worker-pool: {worker_peak:.1} MiB sampled during the import, VmHWM {worker_hwm:.1} MiB (target < {RSS_TARGET_MIB} MB) {}",
        verdict(worker_hwm.max(worker_peak) < RSS_TARGET_MIB)
    );
    println!(
        "job counts vs generator: {}",
        if counts_ok {
            "match"
        } else {
            "MISMATCH (see above)"
        }
    );
    if let Some(list) = list {
        println!(
            "GET /v1/contacts?limit=50 first page, {LATENCY_CONNECTIONS} connections: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms (target p99 < {P99_TARGET_MS} ms) {}; {SATURATION_CONNECTIONS} connections: {:.0} req/s, p99 {:.2} ms",
            list.first.rps,
            list.first.p50_ms,
            list.first.p99_ms,
            verdict(list.first.p99_ms < P99_TARGET_MS),
            list.first_saturated.rps,
            list.first_saturated.p99_ms,
        );
        println!(
            "GET /v1/contacts?limit=50 after {} pages of 200 (walked in {:.1} s), {LATENCY_CONNECTIONS} connections: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms (target p99 < {P99_TARGET_MS} ms) {}; {SATURATION_CONNECTIONS} connections: {:.0} req/s, p99 {:.2} ms",
            list.deep_pages,
            list.walk_secs,
            list.deep.rps,
            list.deep.p50_ms,
            list.deep.p99_ms,
            verdict(list.deep.p99_ms < P99_TARGET_MS),
            list.deep_saturated.rps,
            list.deep_saturated.p99_ms,
        );
    }
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met {
        "[met]"
    } else {
        "[MISSED]"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_country_and_style_is_a_valid_mobile_for_libphonenumber() {
        let region = default_region().unwrap();
        for (country, spec) in COUNTRIES.iter().enumerate() {
            for counter in [0, 1, 2, 3, 12_345, 99_999] {
                let n = national(country, counter).unwrap();
                for style in 0..style_count(country, false) {
                    let (raw, lenient) = render(country, &n, style);
                    if lenient {
                        continue;
                    }
                    assert_eq!(
                        libphonenumber_mobile(&raw, region),
                        Some((format!("{}{n}", spec.calling_code), spec.region.to_owned())),
                        "{raw}"
                    );
                }
            }
        }
    }

    #[test]
    fn scrambled_counters_do_not_collide() {
        let mut seen = HashSet::new();
        for counter in 0..200_000 {
            assert!(seen.insert(national(0, counter).unwrap()));
            assert!(seen.insert(national(US_COUNTRY, counter).unwrap()));
        }
    }

    #[test]
    fn the_file_is_deterministic_and_checked() {
        let dir = std::env::temp_dir();
        let a = dir.join(format!(
            "kloyst-bench-import-test-a-{}.csv",
            std::process::id()
        ));
        let b = dir.join(format!(
            "kloyst-bench-import-test-b-{}.csv",
            std::process::id()
        ));
        let first = generate(20_000, &a).unwrap();
        let second = generate(20_000, &b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let _ = (std::fs::remove_file(&a), std::fs::remove_file(&b));
        assert_eq!(
            first.unique.len() as u64 + first.invalid + first.duplicates,
            20_000
        );
        assert!((800..1_200).contains(&first.invalid), "{}", first.invalid);
        assert!(
            (800..1_200).contains(&first.duplicates),
            "{}",
            first.duplicates
        );
        assert_eq!(second.unique.len(), first.unique.len());
    }
}
