//! Bytes as UTF-8 text → the policy language's parser and builder
//! (`PolicySet::parse_str`). Never panic; every error names a position
//! inside the text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pgward::policy::PolicySet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // One iteration: plain-text passwords are hashed, and that is not
    // what is being tested.
    match PolicySet::parse_str(Path::new("fuzz.sql"), text, 1) {
        Ok(set) => {
            // A set that loaded answers the questions a login asks.
            for user in set.users.keys() {
                let roles = set.effective_roles(user);
                assert!(roles.contains(user) && roles.iter().any(|r| r == "public"));
            }
            let stranger = "\u{1}not a declared user";
            assert!(set.effective_roles(stranger).is_empty());
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a refused set says why");
            let lines = text.split('\n').count() as u64;
            for error in &errors {
                let shown = error.to_string();
                assert!(!shown.is_empty());
                if let Some(location) = &error.location {
                    assert!(location.line >= 1 && location.line <= lines, "{shown}");
                }
            }
        }
    }
});
