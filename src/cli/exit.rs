//! Every command's exit status, in one enum mapped to its number in one place.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success (`build --skip-unchanged` with every build skipped: `--skipped-exit-code`) |
//! | 1    | the thing checked is not right: invalid template, failed validation, failed build |
//! | 2    | usage or input error: bad arguments, unreadable file, bad spec or argument |
//! | 3    | `forge build`: the image was built but its `retention {}` failed (image kept) |
//! | 4    | could not log in to the cloud: no or invalid cloud configuration, Keystone unreachable, or credentials refused |
//! | 75   | `forge build`: another run of the same template holds its lock (nothing done) |
//! | 130  | interrupted (SIGINT/SIGTERM); what was created is cleaned up |

use std::process::ExitCode;

/// How a command ended. Ordered from best to worst, so that several results combine with
/// `max` (a failed build outranks a failed retention although its number is lower).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Done (0).
    Ok,
    /// `forge build --skip-unchanged` built nothing: every build was up to date (the user's
    /// `--skipped-exit-code`, default 0).
    Skipped(u8),
    /// Built, but applying the build's `retention {}` failed (3).
    RetentionFailed,
    /// What was checked or built is not right (1).
    Failed,
    /// Usage or input error (2).
    Usage,
    /// Could not log in to the cloud (4).
    Login,
    /// Another run holds the template's lock (75, sysexits' EX_TEMPFAIL: try again later).
    Locked,
    /// SIGINT/SIGTERM (130).
    Interrupted,
}

/// The table above, for `--help` (`after_help`) and the README.
pub const TABLE: &str = "\
Exit status: 0 success; 1 invalid template, failed validation or failed build; 2 usage or \
input error; 3 (build) the image was built but its retention failed; 4 could not log in to \
the cloud (no or invalid cloud configuration, Keystone unreachable, credentials refused); \
75 (build) another run of the template holds its lock; 130 interrupted.";

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Skipped(n) => n,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::RetentionFailed => 3,
            Exit::Login => 4,
            Exit::Locked => 75,
            Exit::Interrupted => 130,
        }
    }

    /// A template's diagnostics: none is success, an unreadable input is a usage error,
    /// anything else an invalid template.
    pub fn of_diagnostics(d: &crate::template::Diagnostics) -> Exit {
        match d.exit_code() {
            0 => Exit::Ok,
            2 => Exit::Usage,
            _ => Exit::Failed,
        }
    }

    /// A failure: [`Exit::Login`] when it happened logging in (its chain holds a
    /// [`crate::openstack::LoginError`]), else [`Exit::Failed`].
    pub fn of_error(e: &anyhow::Error) -> Exit {
        if e.chain()
            .any(|c| c.downcast_ref::<crate::openstack::LoginError>().is_some())
        {
            Exit::Login
        } else {
            Exit::Failed
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn a_failed_build_outranks_a_failed_retention() {
        assert_eq!(Exit::Ok.max(Exit::RetentionFailed), Exit::RetentionFailed);
        assert_eq!(Exit::RetentionFailed.max(Exit::Failed), Exit::Failed);
        assert_eq!(Exit::Failed.max(Exit::RetentionFailed), Exit::Failed);
        assert_eq!(
            Exit::RetentionFailed.max(Exit::Interrupted),
            Exit::Interrupted
        );
        assert_eq!(Exit::Failed.max(Exit::Login), Exit::Login);
        assert_eq!(Exit::Failed.max(Exit::Interrupted), Exit::Interrupted);
    }

    #[test]
    fn codes_are_distinct() {
        let all = [
            Exit::Ok,
            Exit::Failed,
            Exit::Usage,
            Exit::RetentionFailed,
            Exit::Login,
            Exit::Locked,
            Exit::Interrupted,
        ];
        let mut codes: Vec<u8> = all.iter().map(|e| e.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert_eq!(Exit::Login.code(), 4);
        assert_ne!(Exit::Login.code(), Exit::Usage.code());
    }
}
