//! The `.modinfo` reader `klpctl pack` runs on a kernel module, on arbitrary
//! bytes: ELF header, section headers, section names, and the key=value
//! strings.
#![no_main]

use klpctl::trust::manifest;
use klpctl::modinfo::{self, MAX_MODINFO};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src: &[u8] = data;
    let mut buf = [0u8; MAX_MODINFO];
    if let Ok(m) = modinfo::parse(&src, &mut buf) {
        // What pack copies into the manifest must already be valid there.
        assert!(manifest::valid_name(m.name));
        assert!(manifest::valid_release(m.release));
    }
    // The key=value lookup on its own, as if the whole input were .modinfo.
    let _ = modinfo::get(data, "name");
    let _ = modinfo::get(data, "vermagic");
});
