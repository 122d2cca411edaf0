//! Variables and locals through the library API: Packer's precedence, type conversion, located
//! errors in var files, validation rules, sensitive marking and redaction.

use std::path::{Path, PathBuf};

use forge::template::{self, LoadOptions, Provisioner, Source, Template};

/// A template with the given variable/local blocks, one openstack source using them, and a
/// validators provisioner whose arguments come from `arguments`.
fn write(dir: &Path, head: &str, image_name: &str, arguments: &str) -> PathBuf {
    std::fs::write(dir.join("spec.yaml"), "validators: []\n").unwrap();
    let p = dir.join("t.pkr.hcl");
    let text = format!(
        r#"{head}
source "openstack" "s" {{
  source_image_name = "debian"
  flavor            = "m1.small"
  ssh_username      = "debian"
  image_name        = {image_name}
}}
build {{
  sources = [source.openstack.s]
  provisioner "validators" {{
    spec      = "spec.yaml"
    arguments = {arguments}
  }}
}}
"#
    );
    std::fs::write(&p, text).unwrap();
    p
}

fn load(p: &Path, opts: &LoadOptions) -> Template {
    template::load(p, opts).unwrap_or_else(|d| panic!("should load:\n{d}"))
}

fn image_name(t: &Template) -> &str {
    match &t.sources[0] {
        Source::OpenStack(s) => &s.image.name,
        other => panic!("unexpected source {other:?}"),
    }
}

const NAME_VAR: &str = r#"variable "name" {
  type    = string
  default = "from-default"
}"#;

#[test]
fn precedence_default_env_varfile_cli() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), NAME_VAR, "var.name", "{}");
    let vf1 = dir.path().join("one.hcl");
    let vf2 = dir.path().join("two.hcl");
    std::fs::write(&vf1, "name = \"from-file-1\"\n").unwrap();
    std::fs::write(&vf2, "name = \"from-file-2\"\n").unwrap();
    let env = vec![("FORGE_VAR_name".to_string(), "from-env".to_string())];

    let mut o = LoadOptions::default();
    assert_eq!(image_name(&load(&p, &o)), "from-default");
    o.env = env.clone();
    assert_eq!(image_name(&load(&p, &o)), "from-env");
    o.var_files = vec![vf1.clone()];
    assert_eq!(image_name(&load(&p, &o)), "from-file-1");
    // Later var files win.
    o.var_files = vec![vf1.clone(), vf2.clone()];
    assert_eq!(image_name(&load(&p, &o)), "from-file-2");
    o.vars = vec!["name=from-cli-1".into(), "name=from-cli-2".into()];
    assert_eq!(image_name(&load(&p, &o)), "from-cli-2");
    // -var wins over var files even when files are listed "later" in the options.
    let o = LoadOptions {
        vars: vec!["name=cli".into()],
        var_files: vec![vf2],
        env,
    };
    assert_eq!(image_name(&load(&p, &o)), "cli");
    // Unrelated FORGE_VAR_ entries are ignored.
    let o = LoadOptions {
        env: vec![("FORGE_VAR_unrelated".into(), "x".into())],
        ..Default::default()
    };
    assert_eq!(image_name(&load(&p, &o)), "from-default");
}

#[test]
fn cli_values_are_converted_to_the_declared_type() {
    let dir = tempfile::tempdir().unwrap();
    let head = r#"
variable "tags" {
  type    = list(string)
  default = []
}
variable "size" {
  type    = number
  default = 1
}
variable "flag" {
  default = false
}
locals {
  summary = "${join(",", var.tags)}/${var.size}/${var.flag}"
}"#;
    let p = write(dir.path(), head, "local.summary", "{}");
    let o = LoadOptions {
        vars: vec![
            r#"tags=["a", "b"]"#.into(),
            "size=42".into(),
            "flag=true".into(),
        ],
        ..Default::default()
    };
    assert_eq!(image_name(&load(&p, &o)), "a,b/42/true");

    let bad = LoadOptions {
        vars: vec!["size=many".into(), "flag=perhaps".into(), "nope=1".into()],
        ..Default::default()
    };
    let d = template::load(&p, &bad).unwrap_err();
    let msgs: Vec<String> = d.iter().map(|x| x.to_string()).collect();
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("-var: error: variable `size`: \"many\" is not a valid number")),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("-var: error: variable `flag`: ")),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("undeclared variable `nope`")),
        "{msgs:#?}"
    );
    assert_eq!(d.exit_code(), 1);
}

#[test]
fn var_file_problems_are_located_in_the_var_file() {
    let dir = tempfile::tempdir().unwrap();
    let head = r#"variable "name" {
  type = string
}
variable "count_" {
  type    = number
  default = 1
}"#;
    let p = write(dir.path(), head, "var.name", "{}");
    let d = template::load(&p, &LoadOptions::default()).unwrap_err();
    assert_eq!(
        d.iter().map(|x| x.to_string().lines().next().unwrap().to_string()).collect::<Vec<_>>(),
        [format!("{}:1:1: error: variable `name` has no value; give it a default, or set it with -var name=VALUE, a -var-file, or FORGE_VAR_name", p.display())]
    );
    let vf = dir.path().join("vars.hcl");
    std::fs::write(&vf, "nmae = \"x\"\ncount_ = \"lots\"\nname = local.x\n").unwrap();
    let o = LoadOptions {
        var_files: vec![vf.clone()],
        ..Default::default()
    };
    let d = template::load(&p, &o).unwrap_err();
    let headers: Vec<String> = d
        .iter()
        .map(|x| x.to_string().lines().next().unwrap().to_string())
        .collect();
    let f = vf.display();
    // `name`'s bad assignment is its one error: not again as "no value", nor where
    // `image_name` reads it.
    assert_eq!(
        headers,
        [
            format!(
                "{f}:1:1: error: var file sets undeclared variable `nmae` (did you mean `name`?)"
            ),
            format!(
                "{f}:2:10: error: variable `count_`: expected number, found the string \"lots\""
            ),
            format!("{f}:3:8: error: a var file holds constants; it cannot refer to other values"),
        ],
    );
}

#[test]
fn validation_rules_run_on_the_final_value() {
    let dir = tempfile::tempdir().unwrap();
    let head = r#"variable "name" {
  type    = string
  default = "ok-name"
  validation {
    condition     = lower(var.name) == var.name
    error_message = "The name must be lower case."
  }
}"#;
    let p = write(dir.path(), head, "var.name", "{}");
    assert_eq!(image_name(&load(&p, &LoadOptions::default())), "ok-name");
    let o = LoadOptions {
        env: vec![("FORGE_VAR_name".into(), "Loud".into())],
        ..Default::default()
    };
    let d = template::load(&p, &o).unwrap_err();
    let first = d.iter().next().unwrap().to_string();
    assert!(
        first.starts_with(&format!(
            "{}:5:21: error: invalid value \"Loud\" for variable `name` (from environment variable FORGE_VAR_name): The name must be lower case.",
            p.display()
        )),
        "{first}"
    );
}

#[test]
fn locals_evaluate_in_dependency_order_and_cycles_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    // Declared out of order, split over two blocks.
    let head = r#"locals {
  full = "${local.prefix}-${local.suffix}"
}
locals {
  prefix = upper("img")
  suffix = "1"
}"#;
    let p = write(dir.path(), head, "local.full", "{}");
    assert_eq!(image_name(&load(&p, &LoadOptions::default())), "IMG-1");

    let head = "locals {\n  a = local.b\n  b = local.a\n  c = local.zz\n}";
    let p = write(dir.path(), head, "\"x\"", "{}");
    let d = template::load(&p, &LoadOptions::default()).unwrap_err();
    let msgs: Vec<String> = d
        .iter()
        .map(|x| x.to_string().lines().next().unwrap().to_string())
        .collect();
    let f = p.display();
    assert_eq!(
        msgs,
        [
            format!("{f}:2:3: error: local `a` depends on itself (through local.b)"),
            format!("{f}:3:3: error: local `b` depends on itself (through local.a)"),
            format!("{f}:4:7: error: reference to undeclared local `local.zz`"),
        ]
    );
}

#[test]
fn sensitive_values_are_marked_and_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let head = r#"variable "db_password" {
  type      = string
  sensitive = true
}
variable "motd" {
  type    = string
  default = "hello"
}
locals {
  dsn = "postgres://app:${var.db_password}@db/app"
}"#;
    let p = write(
        dir.path(),
        head,
        "\"img\"",
        "{ password = var.db_password, dsn = local.dsn, motd = var.motd }",
    );
    let secret = "s3cr3t-$(reboot)-'quoted'";
    let o = LoadOptions {
        vars: vec![format!("db_password={secret}")],
        ..Default::default()
    };
    let t = load(&p, &o);
    assert!(t.variables["db_password"].sensitive);
    assert!(!t.variables["motd"].sensitive);
    assert!(t.locals["dsn"].sensitive);
    let Provisioner::Validators(v) = &t.builds[0].provisioners[0] else {
        panic!("expected a validators provisioner")
    };
    // The values are there for the engine to use...
    assert_eq!(v.arguments["password"].value, secret);
    assert!(v.arguments["password"].sensitive);
    assert!(v.arguments["dsn"].sensitive);
    assert!(!v.arguments["motd"].sensitive);
    // ...but never in Debug output, and redact() hides them in any text.
    let debug = format!("{t:?} {v:?} {:?}", t.variables["db_password"]);
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("<sensitive>"));
    assert!(
        debug.contains("hello"),
        "non-sensitive values stay visible: {debug}"
    );
    assert_eq!(
        t.redact(&format!(
            "connecting with {secret} to postgres://app:{secret}@db/app"
        )),
        "connecting with <sensitive> to <sensitive>"
    );
}

#[test]
fn a_sensitive_value_is_not_echoed_in_type_errors() {
    let dir = tempfile::tempdir().unwrap();
    let head = r#"variable "token" {
  type      = string
  sensitive = true
  default   = "tok-123"
}"#;
    // A string where a bool is expected: the message must not quote the secret.
    let p = dir.path().join("t.pkr.hcl");
    let body = std::fs::read_to_string(write(dir.path(), head, "\"img\"", "{}")).unwrap();
    std::fs::write(
        &p,
        body.replace(
            "  flavor ",
            "  config_drive = var.token\n  availability_zone = 1 + var.token\n  flavor ",
        ),
    )
    .unwrap();
    let d = template::load(&p, &LoadOptions::default()).unwrap_err();
    let all = d.to_string();
    assert!(all.contains("`config_drive` must be a bool"), "{all}");
    // hcl-rs quotes operands in its message; the secret is replaced.
    assert!(all.contains("`availability_zone`: binary operator `+` is not applicable to `1` and `\"<sensitive>\"`"), "{all}");
    assert!(!all.contains("tok-123"), "{all}");

    // Nor when a sensitive value given on the command line has the wrong type.
    let head = r#"variable "pin" {
  type      = number
  sensitive = true
}"#;
    let p = write(dir.path(), head, "\"img\"", "{}");
    let o = LoadOptions {
        vars: vec!["pin=hunter2".into()],
        ..Default::default()
    };
    let all = template::load(&p, &o).unwrap_err().to_string();
    assert!(
        all.contains("variable `pin`: \"<sensitive>\" is not a valid number"),
        "{all}"
    );
    assert!(!all.contains("hunter2"), "{all}");
}

#[test]
fn defaults_cannot_reference_and_types_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let head = r#"variable "a" {
  default = var.b
}
variable "b" {
  type    = number
  default = "not a number"
}
variable "c" {
  type = tuple
}"#;
    let p = write(dir.path(), head, "\"x\"", "{}");
    let d = template::load(&p, &LoadOptions::default()).unwrap_err();
    let msgs: Vec<String> = d
        .iter()
        .map(|x| x.to_string().lines().next().unwrap().to_string())
        .collect();
    let f = p.display();
    assert!(msgs.contains(&format!("{f}:2:13: error: a variable's default cannot refer to other values; use a local instead")), "{msgs:#?}");
    assert!(
        msgs.contains(&format!(
            "{f}:6:13: error: `default`: expected number, found the string \"not a number\""
        )),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with(&format!("{f}:9:10: error: `type`: unknown type `tuple`"))),
        "{msgs:#?}"
    );
}
