//! `forge completions` and `forge man`: generated from the CLI definition, usable by a real shell.

use std::process::Command;

fn forge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_forge"))
}

#[test]
fn bash_completion_completes_subcommands_and_flags_in_real_bash() {
    let out = forge().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("forge.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    // Ask the generated function what bash would offer after `forge ima` and `forge build --sk`.
    let probe = format!(
        r#"source {s}
COMP_WORDS=(forge ima); COMP_CWORD=1; _forge forge ima forge; echo "1:${{COMPREPLY[*]}}"
COMP_WORDS=(forge build --sk); COMP_CWORD=2; _forge forge --sk build; echo "2:${{COMPREPLY[*]}}"
complete -p forge"#,
        s = script.display()
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &probe])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bash failed: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("1:images"),
        "subcommand not completed: {text}"
    );
    assert!(
        text.contains("--skip-unchanged"),
        "flag not completed: {text}"
    );
    assert!(text.contains("-F _forge forge"), "not registered: {text}");
}

#[test]
fn completions_exist_for_zsh_and_fish_and_unknown_shell_is_a_usage_error() {
    for (shell, marker) in [("zsh", "#compdef forge"), ("fish", "complete -c forge")] {
        let out = forge().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(marker),
            "{shell}"
        );
    }
    let out = forge().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'tcsh'"));
}

#[test]
fn man_writes_one_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = forge()
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in [
        "forge",
        "forge-build",
        "forge-validate",
        "forge-images-prune",
        "forge-cleanup",
    ] {
        let text = std::fs::read_to_string(dir.path().join(format!("{page}.1"))).unwrap();
        assert!(
            text.contains(&format!(".TH {page} 1")),
            "{page}: {}",
            &text[..200.min(text.len())]
        );
    }
    let build = std::fs::read_to_string(dir.path().join("forge-build.1")).unwrap();
    assert!(
        build.contains("skip\\-unchanged"),
        "build page lacks its options"
    );
    // stdout form: the top page only
    let out = forge().arg("man").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH forge 1"));
}
