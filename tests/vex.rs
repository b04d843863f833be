//! The OpenVEX schemas and their validator (`tests/vex/`): the klpctl-shaped
//! example document passes both schemas, and every invalid fixture fails for
//! the reason its name gives, reported at the right JSON path with the right
//! schema keyword. Fixtures whose fault is only against what klpctl promises
//! (`invalid-klpctl-*`) must pass the plain OpenVEX schema, so the two
//! layers are each shown to do their own part. The validator's own contract
//! is checked too: standard input one document per line, the summary line,
//! exit codes, and an empty input refused.
//!
//! Runs `tests/vex/validate.py` under Debian's `/usr/bin/python3` (override
//! with `KLPCTL_VEX_PYTHON`), which needs the apt packages python3-jsonschema
//! and python3-rfc3987 (tests/run.sh installs them). Without them the tests
//! skip on a developer machine and fail under `CI=true`.
//!
//! Two validator runs cover all fixtures, so the whole file takes about a
//! second.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const KLPCTL_SCHEMA: &str = "klpctl-vex.schema.json";
const OPENVEX_SCHEMA: &str = "openvex-0.2.0.schema.json";

/// Each invalid fixture, the line its fault must produce (JSON path and
/// schema keyword, or the start of a JSON parse error), and whether it is a
/// valid OpenVEX document that only klpctl's promises refuse.
const INVALID: &[(&str, &str, bool)] = &[
    // OpenVEX itself.
    (
        "invalid-missing-id.json",
        "$ [required]: '@id' is a required property",
        false,
    ),
    (
        "invalid-author-missing.json",
        "$ [required]: 'author' is a required property",
        false,
    ),
    (
        "invalid-status-patched.json",
        "$.statements[0].status [enum]: 'patched'",
        false,
    ),
    ("invalid-version-zero.json", "$.version [minimum]: 0", false),
    (
        "invalid-version-string.json",
        "$.version [type]: '1'",
        false,
    ),
    (
        "invalid-timestamp-space.json",
        "$.timestamp [format]:",
        false,
    ),
    (
        "invalid-timestamp-no-offset.json",
        "$.timestamp [format]:",
        false,
    ),
    (
        "invalid-timestamp-feb-30.json",
        "$.last_updated [format]:",
        false,
    ),
    (
        "invalid-statements-empty.json",
        "$.statements [minItems]:",
        false,
    ),
    (
        "invalid-products-empty.json",
        "$.statements[0].products [minItems]:",
        false,
    ),
    (
        "invalid-context-foreign.json",
        "$['@context'] [pattern]:",
        false,
    ),
    (
        "invalid-unknown-field.json",
        "$.statements[0] [additionalProperties]:",
        false,
    ),
    (
        "invalid-product-unaddressed.json",
        "$.statements[0].products[2] [anyOf]:",
        false,
    ),
    (
        "invalid-vulnerability-no-name.json",
        "$.statements[0].vulnerability [required]: 'name'",
        false,
    ),
    (
        "invalid-cve-empty.json",
        "$.statements[0].vulnerability.name [minLength]:",
        false,
    ),
    (
        "invalid-not-affected-no-justification.json",
        "- $.statements[0] [required]: 'justification' is a required property",
        false,
    ),
    (
        "invalid-justification-unknown.json",
        "$.statements[0].justification [enum]:",
        false,
    ),
    (
        "invalid-affected-no-action.json",
        "$.statements[1] [required]: 'action_statement'",
        false,
    ),
    (
        "invalid-hash-name-unknown.json",
        "$.statements[2].products[0].hashes [enum]: 'sha256'",
        false,
    ),
    (
        "invalid-duplicate-key.json",
        "not valid JSON: duplicate key '@id'",
        false,
    ),
    ("invalid-truncated.json", "not valid JSON:", false),
    // Valid OpenVEX, but not what klpctl promises.
    (
        "invalid-klpctl-status-not-affected.json",
        "$.statements[0].status [const]:",
        true,
    ),
    (
        "invalid-klpctl-notes-missing.json",
        "$.statements[0] [required]: 'status_notes'",
        true,
    ),
    (
        "invalid-klpctl-notes-blank.json",
        "$.statements[0].status_notes [pattern]:",
        true,
    ),
    (
        "invalid-klpctl-products-missing.json",
        "$.statements[0] [required]: 'products'",
        true,
    ),
    (
        "invalid-klpctl-no-kernel-purl.json",
        "$.statements[0].products [contains]:",
        true,
    ),
    (
        "invalid-klpctl-kernel-purl-no-version.json",
        "$.statements[0].products [contains]:",
        true,
    ),
    (
        "invalid-klpctl-two-kernel-purls.json",
        "$.statements[0].products [maxContains]:",
        true,
    ),
    (
        "invalid-klpctl-product-twice.json",
        "$.statements[0].products [uniqueItems]:",
        true,
    ),
    (
        "invalid-klpctl-id-not-uuid.json",
        "$['@id'] [pattern]:",
        true,
    ),
    (
        "invalid-klpctl-context-unversioned.json",
        "$['@context'] [const]:",
        true,
    ),
];

/// Valid fixtures and whether klpctl's schema accepts them too.
const VALID: &[(&str, bool)] = &[
    ("valid-klpctl.json", true),
    ("valid-openvex-general.json", false),
];

fn vex_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vex")
}

fn python() -> String {
    std::env::var("KLPCTL_VEX_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// True when the validator can run; false (a skip) only outside CI.
fn available() -> bool {
    let probe = Command::new(python())
        .args(["-c", "import jsonschema, rfc3987"])
        .output();
    let why = match probe {
        Ok(o) if o.status.success() => return true,
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => format!("cannot run {}: {e}", python()),
    };
    assert!(
        !is_ci(),
        "CI=true but the OpenVEX validator cannot run ({why}); tests/run.sh installs python3-jsonschema and python3-rfc3987"
    );
    eprintln!(
        "vex: skipped, validator unavailable ({why}); apt-get install python3-jsonschema python3-rfc3987"
    );
    false
}

/// Runs validate.py with SCHEMA (a file in tests/vex/) and ARGS, feeding
/// STDIN if given.
fn validate(schema: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let dir = vex_dir();
    let mut child = Command::new(python())
        .arg(dir.join("validate.py"))
        .arg(dir.join(schema))
        .args(args)
        .current_dir(dir.join("fixtures"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the validator");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> (i32, String, String) {
    let code = out.status.code().expect("validator killed by a signal");
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    (code, stdout, stderr)
}

/// Splits the validator's report into {document: lines}; the header line
/// ("FILE: invalid" or "FILE: not valid JSON: ...") is kept as the first.
fn by_document(stdout: &str) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = None;
    for line in stdout.lines() {
        if line.starts_with("checked ") {
            current = None;
        } else if !line.starts_with(' ') {
            let (doc, _) = line
                .split_once(": ")
                .expect("header line without a document name");
            current = Some(doc.to_string());
            map.entry(doc.to_string())
                .or_default()
                .push(line.to_string());
        } else if let Some(doc) = &current {
            map.get_mut(doc).unwrap().push(line.trim().to_string());
        } else {
            panic!("error line outside a document: {line:?}\n{stdout}");
        }
    }
    map
}

fn all_fixtures() -> Vec<&'static str> {
    let mut all: Vec<&str> = INVALID
        .iter()
        .map(|f| f.0)
        .chain(VALID.iter().map(|f| f.0))
        .collect();
    all.sort_unstable();
    all
}

#[test]
fn every_fixture_is_listed_here() {
    let mut on_disk: Vec<String> = std::fs::read_dir(vex_dir().join("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort_unstable();
    assert_eq!(
        on_disk,
        all_fixtures(),
        "tests/vex/fixtures and the tables in tests/vex.rs differ"
    );
}

/// One run per schema over every fixture: each must be valid or fail with
/// its expected line, and nothing else may be reported.
fn check_schema(schema: &str, klpctl: bool) {
    let fixtures = all_fixtures();
    let (code, stdout, stderr) = text(&validate(schema, &fixtures, None));
    let report = by_document(&stdout);

    let mut expect_invalid = 0;
    for &(file, line, klpctl_only) in INVALID {
        if !klpctl && klpctl_only {
            assert!(
                !report.contains_key(file),
                "{file} must pass {schema}:\n{:#?}",
                report.get(file)
            );
            continue;
        }
        expect_invalid += 1;
        let got = report
            .get(file)
            .unwrap_or_else(|| panic!("{file} passed {schema}, expected: {line}"));
        assert!(
            got.iter().any(|l| l.contains(line)),
            "{file} against {schema}: no line with {line:?} in\n{}",
            got.join("\n")
        );
    }
    for &(file, klpctl_valid) in VALID {
        if klpctl && !klpctl_valid {
            expect_invalid += 1;
            assert!(report.contains_key(file), "{file} must fail {schema}");
        } else {
            assert!(
                !report.contains_key(file),
                "{file} must pass {schema}:\n{:#?}",
                report.get(file)
            );
        }
    }
    assert_eq!(report.len(), expect_invalid, "{stdout}");
    let summary = format!(
        "checked {} documents: {} valid, {} invalid",
        fixtures.len(),
        fixtures.len() - expect_invalid,
        expect_invalid
    );
    assert_eq!(stdout.lines().last(), Some(summary.as_str()), "{stdout}");
    assert_eq!(
        code, 1,
        "any invalid document means exit 1\n{stdout}{stderr}"
    );
}

#[test]
fn fixtures_against_the_openvex_schema() {
    if available() {
        check_schema(OPENVEX_SCHEMA, false);
    }
}

#[test]
fn fixtures_against_the_klpctl_schema() {
    if available() {
        check_schema(KLPCTL_SCHEMA, true);
    }
}

#[test]
fn validator_contract() {
    if !available() {
        return;
    }
    let dir = vex_dir().join("fixtures");
    let valid = std::fs::read_to_string(dir.join("valid-klpctl.json")).unwrap();
    let bad = std::fs::read_to_string(dir.join("invalid-version-zero.json")).unwrap();

    // Files: all valid is exit 0.
    let (code, stdout, _) = text(&validate(KLPCTL_SCHEMA, &["valid-klpctl.json"], None));
    assert_eq!(
        (code, stdout.as_str()),
        (0, "checked 1 documents: 1 valid, 0 invalid\n")
    );

    // Standard input, one document per line, blank lines skipped; "-" too.
    let lines = format!("{valid}\n{valid}");
    for args in [&[][..], &["-"][..]] {
        let (code, stdout, stderr) = text(&validate(KLPCTL_SCHEMA, args, Some(&lines)));
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert_eq!(stdout, "checked 2 documents: 2 valid, 0 invalid\n");
    }
    let (code, stdout, _) = text(&validate(
        KLPCTL_SCHEMA,
        &[],
        Some(&format!("{valid}{bad}")),
    ));
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.starts_with("<stdin>:2: invalid\n  $.version [minimum]:"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("checked 2 documents: 1 valid, 1 invalid\n"),
        "{stdout}"
    );

    // No document at all is an error, not a pass.
    for input in ["", "\n  \n"] {
        let (code, stdout, stderr) = text(&validate(KLPCTL_SCHEMA, &[], Some(input)));
        assert_eq!(code, 1, "empty input {input:?}: {stdout}{stderr}");
        assert_eq!(stdout, "checked 0 documents: 0 valid, 0 invalid\n");
        assert!(stderr.contains("no documents to check"), "{stderr}");
    }

    // Cannot run: exit 2, nothing claimed about documents.
    let (code, stdout, stderr) = text(&validate(KLPCTL_SCHEMA, &["no-such-file.json"], None));
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(!stdout.contains("checked"), "{stdout}");
    let (code, _, stderr) = text(&validate(
        "no-such.schema.json",
        &["valid-klpctl.json"],
        None,
    ));
    assert_eq!(code, 2, "{stderr}");
}
