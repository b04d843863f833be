//! The case files of `qemu/guest/cases/` and the scenarios they run in:
//! the plans the guests must print, read from the same files the initramfs
//! ships.

use std::path::Path;

/// Where the guest's case files live; `mkinitramfs.sh` ships them all.
pub(crate) const CASES_DIR: &str = "qemu/guest/cases";

pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) kernel_args: &'static [&'static str],
}

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "main",
        kernel_args: &[],
    },
    Scenario {
        name: "sigenforce",
        kernel_args: &["module.sig_enforce=1"],
    },
    // Busy tasks on every CPU while patches apply and disable, and the
    // do-it-yourself baseline (cases 40 and 41). A boot of its own, because
    // `qemu/smp-modes` may choose another TCG mode for a kernel under load.
    Scenario {
        name: "load",
        kernel_args: &[],
    },
];

/// The kernel's own livepatch selftests, run with klpctl as the loader.
/// Not in `SCENARIOS`: its plan comes from the selftests that
/// `qemu/mkselftests.sh` prepared for each kernel, not from case files.
pub(crate) const SELFTESTS: Scenario = Scenario {
    name: "selftests",
    kernel_args: &[],
};

/// Marker every scenario prints first: `qemu/guest/init` checks the booted
/// kernel before the scenario's plan runs.
pub(crate) const ENV_CASE: &str = "env";

/// One case file, `NN-name.sh`: its marker `cNN_name` and the scenarios its
/// `# scenarios:` line names.
#[derive(Debug)]
pub(crate) struct CaseFile {
    pub(crate) marker: String,
    pub(crate) scenarios: Vec<String>,
}

/// Reads one case file as the guest's `run.sh` does. Stricter than the
/// guest: the host also refuses malformed names and unknown scenarios, so a
/// case cannot drop out of every plan unnoticed.
pub(crate) fn parse_case_file(file: &str, text: &str) -> Result<CaseFile, String> {
    let stem = file
        .strip_suffix(".sh")
        .ok_or_else(|| format!("{file}: not a .sh file"))?;
    let (num, name) = stem
        .split_once('-')
        .ok_or_else(|| format!("{file}: not named NN-name.sh"))?;
    if num.len() != 2 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{file}: the number must be two digits"));
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("{file}: the name must be [a-z0-9_]+"));
    }
    let tags: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# scenarios:"))
        .collect();
    let [tags] = tags[..] else {
        return Err(format!(
            "{file}: needs exactly one '# scenarios:' line, has {}",
            tags.len()
        ));
    };
    let scenarios: Vec<String> = tags.split_whitespace().map(str::to_owned).collect();
    if scenarios.is_empty() {
        return Err(format!("{file}: '# scenarios:' names no scenario"));
    }
    if let Some(bad) = scenarios
        .iter()
        .find(|s| !SCENARIOS.iter().any(|sc| sc.name == s.as_str()))
    {
        return Err(format!("{file}: unknown scenario {bad}"));
    }
    if !text.lines().any(|l| l.trim_end() == "run_case() {") {
        return Err(format!("{file}: defines no run_case"));
    }
    Ok(CaseFile {
        marker: format!("c{num}_{name}"),
        scenarios,
    })
}

/// The case files `[0-9]*.sh` of `dir`, in the order the guest runs them
/// (its glob sorts by name, bytewise in the guest's C locale).
pub(crate) fn case_files(dir: &Path) -> Result<Vec<CaseFile>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(|c: char| c.is_ascii_digit()) && name.ends_with(".sh") {
            names.push(name);
        }
    }
    names.sort();
    let mut files: Vec<CaseFile> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 && names[i - 1].get(..2) == name.get(..2) {
            return Err(format!("{} and {name} share a number", names[i - 1]));
        }
        let text = std::fs::read_to_string(dir.join(name))
            .map_err(|e| format!("cannot read {}/{name}: {e}", dir.display()))?;
        files.push(parse_case_file(name, &text)?);
    }
    Ok(files)
}

/// The markers the guest must plan for `scenario`, in order.
pub(crate) fn plan_for(files: &[CaseFile], scenario: &str) -> Vec<String> {
    files
        .iter()
        .filter(|f| f.scenarios.iter().any(|s| s == scenario))
        .map(|f| f.marker.clone())
        .collect()
}

/// The variable that runs only some cases by name, for `qemu/run.sh` and
/// the QEMU tests alike: `KLPTEST_CASES="c05_disable c07_downgrade"`.
pub(crate) const CASES_VAR: &str = "KLPTEST_CASES";

/// The case markers `value` (of [`CASES_VAR`]) names, separated by spaces
/// or commas; `None` when it names none (unset or blank: every case runs).
/// Each must be the marker of one of `files`: a typo fails here, and never
/// becomes a run of nothing that passes.
pub(crate) fn selected_cases(
    value: Option<&str>,
    files: &[CaseFile],
) -> Result<Option<Vec<String>>, String> {
    let names: Vec<String> = value
        .unwrap_or("")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    if let Some(bad) = names
        .iter()
        .find(|n| !files.iter().any(|f| &f.marker == *n))
    {
        return Err(format!(
            "{CASES_VAR} names {bad}, not a case of {CASES_DIR} (its markers: {})",
            files
                .iter()
                .map(|f| f.marker.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    Ok(Some(names))
}

/// [`plan_for`] narrowed to the `selected` cases (all when `None`): what
/// the guest must plan when the boot runs only those.
pub(crate) fn selected_plan(
    files: &[CaseFile],
    scenario: &str,
    selected: Option<&[String]>,
) -> Vec<String> {
    let mut plan = plan_for(files, scenario);
    if let Some(only) = selected {
        plan.retain(|m| only.contains(m));
    }
    plan
}
