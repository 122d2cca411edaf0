//! The template functions: `timestamp() formatdate() uuidv4() env() file() lower() upper()
//! replace() join()`, with Packer/Terraform semantics.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc};
use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};
use hcl::Value;

/// Every function a template may call.
pub(crate) const NAMES: [&str; 9] = [
    "timestamp",
    "formatdate",
    "uuidv4",
    "env",
    "file",
    "lower",
    "upper",
    "replace",
    "join",
];

thread_local! {
    // `file()` reads relative to the template's directory. hcl-rs functions are plain `fn`
    // pointers without captured state, so the directory travels in a thread-local that
    // `with_base_dir` sets for the duration of one evaluation.
    static BASE_DIR: RefCell<PathBuf> = RefCell::new(PathBuf::from("."));
}

/// Runs `f` with `file()` resolving relative paths against `dir`.
pub(crate) fn with_base_dir<T>(dir: &Path, f: impl FnOnce() -> T) -> T {
    let old = BASE_DIR.with(|b| b.replace(dir.to_path_buf()));
    let out = f();
    BASE_DIR.with(|b| b.replace(old));
    out
}

/// Declares every function in `ctx`.
pub(crate) fn declare(ctx: &mut Context) {
    use ParamType::{Any, String as Str};
    ctx.declare_func("timestamp", FuncDef::builder().build(timestamp));
    ctx.declare_func(
        "formatdate",
        FuncDef::builder().params([Str, Str]).build(formatdate),
    );
    ctx.declare_func("uuidv4", FuncDef::builder().build(uuidv4));
    ctx.declare_func("env", FuncDef::builder().param(Str).build(env));
    ctx.declare_func("file", FuncDef::builder().param(Str).build(file));
    ctx.declare_func("lower", FuncDef::builder().param(Str).build(lower));
    ctx.declare_func("upper", FuncDef::builder().param(Str).build(upper));
    ctx.declare_func(
        "replace",
        FuncDef::builder().params([Str, Str, Str]).build(replace),
    );
    ctx.declare_func(
        "join",
        FuncDef::builder()
            .param(Str)
            .variadic_param(ParamType::array_of(Any))
            .build(join),
    );
}

fn str_arg(args: &FuncArgs, i: usize) -> Result<&str, String> {
    args.get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("argument {} must be a string", i + 1))
}

/// The current UTC time, RFC 3339 (`2026-11-22T02:40:54Z`).
fn timestamp(_: FuncArgs) -> Result<Value, String> {
    Ok(Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        .into())
}

fn uuidv4(_: FuncArgs) -> Result<Value, String> {
    Ok(uuid::Uuid::new_v4().to_string().into())
}

/// The environment variable's value, or "" when unset (as Packer).
fn env(args: FuncArgs) -> Result<Value, String> {
    Ok(std::env::var(str_arg(&args, 0)?).unwrap_or_default().into())
}

/// The most `file()` reads: templates embed small text files (scripts, keys, user data).
const FILE_LIMIT: u64 = 16 * 1024 * 1024;

/// A regular file's text. Devices and pipes are refused and the size is bounded, so a template
/// naming `/dev/zero` or `/dev/stdin` gets an error instead of hanging `forge validate`.
fn file(args: FuncArgs) -> Result<Value, String> {
    use std::io::Read;
    let rel = str_arg(&args, 0)?;
    let path = BASE_DIR.with(|b| b.borrow().join(rel));
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    // Checked before opening: opening a FIFO blocks until a writer appears.
    if !std::fs::metadata(&path).map_err(cannot)?.is_file() {
        return Err(format!(
            "cannot read {}: not a regular file",
            path.display()
        ));
    }
    let f = std::fs::File::open(&path).map_err(cannot)?;
    let mut text = String::new();
    f.take(FILE_LIMIT + 1)
        .read_to_string(&mut text)
        .map_err(cannot)?;
    if text.len() as u64 > FILE_LIMIT {
        return Err(format!(
            "{} is larger than {} MiB; file() is for small text files",
            path.display(),
            FILE_LIMIT >> 20
        ));
    }
    Ok(Value::from(text))
}

fn lower(args: FuncArgs) -> Result<Value, String> {
    Ok(str_arg(&args, 0)?.to_lowercase().into())
}

fn upper(args: FuncArgs) -> Result<Value, String> {
    Ok(str_arg(&args, 0)?.to_uppercase().into())
}

/// Plain substring replacement (Terraform's `/regex/` form is not supported).
fn replace(args: FuncArgs) -> Result<Value, String> {
    let (s, from, to) = (str_arg(&args, 0)?, str_arg(&args, 1)?, str_arg(&args, 2)?);
    if from.is_empty() {
        return Err("the substring to replace must not be empty".into());
    }
    Ok(s.replace(from, to).into())
}

/// `join(separator, list, ...)`: the elements of every list, joined.
fn join(args: FuncArgs) -> Result<Value, String> {
    let sep = str_arg(&args, 0)?.to_string();
    let mut parts = Vec::new();
    for list in args.variadic_args() {
        for v in list.as_array().into_iter().flatten() {
            parts.push(match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => return Err(format!("join: cannot join a non-string element {other}")),
            });
        }
    }
    if args.len() < 2 {
        return Err("join needs at least one list".into());
    }
    Ok(parts.join(&sep).into())
}

/// `formatdate(spec, timestamp)` with Terraform's format spec: `YYYY YY MMMM MMM MM M DD D EEEE
/// EEE hh h HH H mm m ss s AA aa ZZZZZ ZZZZ ZZZ Z`, `'literal'` text.
fn formatdate(args: FuncArgs) -> Result<Value, String> {
    let spec = str_arg(&args, 0)?;
    let ts = str_arg(&args, 1)?;
    let t = DateTime::parse_from_rfc3339(ts)
        .map_err(|e| format!("\"{ts}\" is not an RFC 3339 timestamp: {e}"))?;
    format_spec(spec, &t).map(Value::from)
}

fn format_spec(spec: &str, t: &DateTime<FixedOffset>) -> Result<String, String> {
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal; '' is a literal quote.
            let mut j = i + 1;
            if chars.get(j) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            while j < chars.len() && chars[j] != '\'' {
                out.push(chars[j]);
                j += 1;
            }
            if j == chars.len() {
                return Err("unterminated quoted literal in date format".into());
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        let h12 = match t.hour() % 12 {
            0 => 12,
            h => h,
        };
        let off = t.offset().local_minus_utc();
        let (sign, oh, om) = (
            if off < 0 { '-' } else { '+' },
            off.abs() / 3600,
            off.abs() % 3600 / 60,
        );
        let piece = match (c, n) {
            ('Y', 4) => format!("{:04}", t.year()),
            ('Y', 2) => format!("{:02}", t.year() % 100),
            ('M', 4) => t.format("%B").to_string(),
            ('M', 3) => t.format("%b").to_string(),
            ('M', 2) => format!("{:02}", t.month()),
            ('M', 1) => t.month().to_string(),
            ('D', 2) => format!("{:02}", t.day()),
            ('D', 1) => t.day().to_string(),
            ('E', 4) => t.format("%A").to_string(),
            ('E', 3) => t.format("%a").to_string(),
            ('h', 2) => format!("{:02}", t.hour()),
            ('h', 1) => t.hour().to_string(),
            ('H', 2) => format!("{h12:02}"),
            ('H', 1) => h12.to_string(),
            ('m', 2) => format!("{:02}", t.minute()),
            ('m', 1) => t.minute().to_string(),
            ('s', 2) => format!("{:02}", t.second()),
            ('s', 1) => t.second().to_string(),
            ('A', 2) => (if t.hour() < 12 { "AM" } else { "PM" }).to_string(),
            ('a', 2) => (if t.hour() < 12 { "am" } else { "pm" }).to_string(),
            ('Z', 5) => format!("{sign}{oh:02}:{om:02}"),
            ('Z', 4) => format!("{sign}{oh:02}{om:02}"),
            ('Z', 3) if off == 0 => "UTC".to_string(),
            ('Z', 3) => format!("{sign}{oh:02}{om:02}"),
            ('Z', 1) if off == 0 => "Z".to_string(),
            ('Z', 1) => format!("{sign}{oh:02}:{om:02}"),
            _ => {
                let token: String = std::iter::repeat_n(c, n).collect();
                return Err(format!(
                    "invalid date format token \"{token}\"; quote literal letters with '...'"
                ));
            }
        };
        out.push_str(&piece);
        i += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn formatdate_terraform_tokens() {
        let ts = t("2026-03-07T04:05:09Z");
        assert_eq!(
            format_spec("YYYY-MM-DD hh:mm:ss", &ts).unwrap(),
            "2026-03-07 04:05:09"
        );
        assert_eq!(format_spec("YYYYMMDDhhmm", &ts).unwrap(), "202603070405");
        assert_eq!(
            format_spec("EEE, DD MMM YYYY hh:mm:ss ZZZ", &ts).unwrap(),
            "Sat, 07 Mar 2026 04:05:09 UTC"
        );
        assert_eq!(format_spec("H:mm aa", &ts).unwrap(), "4:05 am");
        assert_eq!(format_spec("'day' D", &ts).unwrap(), "day 7");
        assert_eq!(
            format_spec("Z", &t("2026-03-07T04:05:09+05:30")).unwrap(),
            "+05:30"
        );
        assert!(format_spec("YYYYQ", &ts).is_err());
        assert!(format_spec("'open", &ts).is_err());
    }
}
