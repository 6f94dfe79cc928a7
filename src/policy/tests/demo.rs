//! The demo policy set of PRODUCT.md §5, as shipped in policies/demo/.

use std::path::Path;

use super::*;

#[test]
fn the_demo_policy_set_loads() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/demo/*.sql");
    let set = match PolicySet::load(&[demo.to_string_lossy().into_owned()], ITERATIONS) {
        Ok(set) => set,
        Err(errors) => panic!("{}", render(&errors)),
    };
    assert_eq!(
        set.effective_roles("alice"),
        ["alice", "employee", "public", "sales_rep"]
    );
    assert_eq!(
        set.effective_roles("dave"),
        ["dave", "employee", "manager", "public"]
    );
    for name in ["alice", "bob", "carol", "dave", "eve"] {
        assert!(user(&set, name).verifier.is_some(), "{name}");
    }
}
