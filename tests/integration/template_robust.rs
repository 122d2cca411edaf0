//! Bad input never panics: every truncation of the shipped nightly template is checked, and each
//! one either passes or yields located diagnostics.

use std::path::PathBuf;

use forge::template::{self, CheckLevel, LoadOptions};

#[test]
fn every_truncation_of_a_real_template_gives_diagnostics_not_panics() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("templates/nightly.pkr.hcl")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The spec the template names, so only truncation problems are reported.
    std::fs::create_dir_all(dir.path().join("specs/debian")).unwrap();
    std::fs::write(
        dir.path().join("specs/debian/image.yaml"),
        "validators: []\n",
    )
    .unwrap();
    let p = dir.path().join("t.pkr.hcl");
    let mut checked = 0;
    for cut in (0..text.len())
        .step_by(5)
        .filter(|&i| text.is_char_boundary(i))
    {
        std::fs::write(&p, &text[..cut]).unwrap();
        let d = template::check(&p, &LoadOptions::default(), CheckLevel::Full);
        // Only the complete file is valid; every truncation is reported with a position.
        assert!(!d.is_empty(), "a truncation at byte {cut} was accepted");
        for x in d.iter() {
            assert!(x.line.is_some() && x.column.is_some(), "unlocated: {x}");
        }
        checked += 1;
    }
    std::fs::write(&p, &text).unwrap();
    assert!(template::check(&p, &LoadOptions::default(), CheckLevel::Full).is_empty());
    assert!(checked > 100);
}
