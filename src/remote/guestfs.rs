//! The libguestfs remote: runs commands inside a disk image file, offline, through the libguestfs
//! appliance (a small VM that mounts the image's file systems and chroots into them).
//!
//! A libguestfs handle is synchronous and `!Send`, so one dedicated thread creates it, owns it for
//! its whole life and closes it; the async [`Remote`] methods send requests to that thread over a
//! channel and await the reply. The appliance is launched once per [`GuestfsRemote::open`].
//!
//! Every path ends with `umount-all` + `shutdown` (which syncs) + close: [`GuestfsRemote::close`],
//! dropping the remote (the worker sees its channel close), and errors during open. libguestfs'
//! own autosync also syncs when a handle is freed, so even a panicking worker leaves the file
//! systems consistent.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::{shell_quote, CommandOutput, Remote, RemoteError};

/// How to open a disk image.
#[derive(Debug, Clone, Default)]
pub struct GuestfsOptions {
    /// The disk image file.
    pub image: PathBuf,
    /// The device to mount as `/` (e.g. `/dev/sda1`), skipping inspection (the distro is then
    /// read from the guest's os-release); `None` finds the root and the distro by inspection.
    pub root_filesystem: Option<String>,
    /// Give the appliance a (user-mode) network, e.g. for package installs from a mirror.
    pub network: bool,
    /// Discard every write when the handle closes (libguestfs' copy-on-write snapshot): the
    /// image file is never modified, yet commands that write (to `/tmp`, say) still work.
    pub discard_writes: bool,
}

/// Why a disk image could not be opened or closed cleanly.
#[derive(Debug, thiserror::Error)]
pub enum GuestfsError {
    #[error("{image}: cannot read the disk image: {reason}")]
    Image { image: String, reason: String },
    #[error("{image}: cannot detect the disk format with qemu-img: {reason}")]
    Format { image: String, reason: String },
    #[error("{image}: libguestfs {operation} failed: {message}")]
    Api {
        image: String,
        operation: &'static str,
        message: String,
    },
    #[error("{image}: inspection found no operating system; name the root with --root-filesystem")]
    NoRoot { image: String },
    #[error(
        "{image}: inspection found several operating systems ({roots}); choose one with --root-filesystem"
    )]
    SeveralRoots { image: String, roots: String },
    #[error("{image}: the libguestfs worker thread stopped unexpectedly")]
    WorkerGone { image: String },
}

/// The disk format of `image` as `qemu-img info` reports it (`qcow2`, `raw`, `vmdk`, ...).
///
/// The format is detected once here and then passed explicitly to libguestfs (and qemu), which
/// never probes it: probing a raw image whose content looks like a qcow2 header is unsafe.
pub fn detect_format(image: &Path) -> Result<String, GuestfsError> {
    let name = image.display().to_string();
    let meta = std::fs::metadata(image).map_err(|e| GuestfsError::Image {
        image: name.clone(),
        reason: e.to_string(),
    })?;
    if !meta.is_file() {
        return Err(GuestfsError::Image {
            image: name,
            reason: "not a regular file".into(),
        });
    }
    let fail = |reason: String| GuestfsError::Format {
        image: name.clone(),
        reason,
    };
    // `-U` (force share): reading the header must work even while another process has it open.
    let out = std::process::Command::new("qemu-img")
        .args(["info", "-U", "--output=json"])
        .arg(absolute(image))
        .output()
        .map_err(|e| fail(format!("cannot run qemu-img: {e}")))?;
    if !out.status.success() {
        return Err(fail(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let info: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| fail(format!("unexpected output: {e}")))?;
    info.get("format")
        .and_then(|f| f.as_str())
        .map(str::to_string)
        .ok_or_else(|| fail("no \"format\" in its output".into()))
}

/// `path` made absolute (qemu resolves relative paths against its own working directory, and a
/// relative name starting with `-` would read as an option).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A disk image opened through libguestfs: the appliance is running and the guest's file systems
/// are mounted. Close it with [`GuestfsRemote::close`] to learn whether the final sync worked;
/// dropping it also syncs and closes, blocking until the appliance has stopped.
pub struct GuestfsRemote {
    target: String,
    root: String,
    distro: String,
    launch_time: Duration,
    requests: Option<mpsc::UnboundedSender<Request>>,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for GuestfsRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestfsRemote")
            .field("target", &self.target)
            .field("root", &self.root)
            .field("distro", &self.distro)
            .finish_non_exhaustive()
    }
}

/// What the worker reports once the image is open.
struct Opened {
    root: String,
    distro: String,
    launch_time: Duration,
}

type Reply<T> = oneshot::Sender<Result<T, String>>;

enum Request {
    Run {
        cmd: String,
        reply: Reply<CommandOutput>,
    },
    Write {
        path: String,
        data: Vec<u8>,
        mode: u32,
        reply: Reply<()>,
    },
    Close {
        reply: oneshot::Sender<Result<(), GuestfsError>>,
    },
}

impl GuestfsRemote {
    /// Detect the image's format, launch the appliance (the one launch of this remote), find and
    /// mount the root file system, and learn the distro by inspection.
    pub async fn open(opts: GuestfsOptions) -> Result<GuestfsRemote, GuestfsError> {
        let target = opts.image.display().to_string();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = std::thread::Builder::new()
            .name("guestfs".into())
            .spawn(move || worker(opts, ready_tx, rx))
            .map_err(|e| GuestfsError::Image {
                image: target.clone(),
                reason: format!("cannot start the libguestfs thread: {e}"),
            })?;
        let opened = match ready_rx.await {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => {
                let _ = worker.join();
                return Err(e);
            }
            Err(_) => {
                let _ = worker.join();
                return Err(GuestfsError::WorkerGone { image: target });
            }
        };
        Ok(GuestfsRemote {
            target,
            root: opened.root,
            distro: opened.distro,
            launch_time: opened.launch_time,
            requests: Some(tx),
            worker: Mutex::new(Some(worker)),
        })
    }

    /// The root file system mounted at `/` (e.g. `/dev/sda1`).
    pub fn root(&self) -> &str {
        &self.root
    }

    /// How long adding the drive and launching the appliance took.
    pub fn launch_time(&self) -> Duration {
        self.launch_time
    }

    /// Unmount everything, sync the image, stop the appliance and free the handle. A command
    /// still running (e.g. after a cancelled run) finishes first: libguestfs cannot interrupt it.
    pub async fn close(mut self) -> Result<(), GuestfsError> {
        let gone = || GuestfsError::WorkerGone {
            image: self.target.clone(),
        };
        let result = match self.requests.take() {
            Some(tx) => {
                let (reply, rx) = oneshot::channel();
                match tx.send(Request::Close { reply }) {
                    Ok(()) => rx.await.unwrap_or_else(|_| Err(gone())),
                    Err(_) => Err(gone()),
                }
            }
            None => Ok(()),
        };
        let worker = self.worker.lock().ok().and_then(|mut w| w.take());
        if let Some(worker) = worker {
            // The worker has replied (or died); joining only waits for the thread to return.
            let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        }
        result
    }

    async fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, RemoteError> {
        let transport = |reason: String| RemoteError::Transport {
            target: self.target.clone(),
            reason,
        };
        let tx = self
            .requests
            .as_ref()
            .ok_or_else(|| transport("the image is closed".into()))?;
        let (reply, rx) = oneshot::channel();
        tx.send(make(reply))
            .map_err(|_| transport("the libguestfs worker has stopped".into()))?;
        rx.await
            .map_err(|_| transport("the libguestfs worker stopped unexpectedly".into()))?
            .map_err(transport)
    }
}

impl Drop for GuestfsRemote {
    fn drop(&mut self) {
        // Closing the channel tells the worker to unmount, sync and close; wait for it so the
        // image is consistent before the process can exit.
        self.requests.take();
        if let Some(worker) = self.worker.get_mut().ok().and_then(|w| w.take()) {
            let _ = worker.join();
        }
    }
}

#[async_trait]
impl Remote for GuestfsRemote {
    fn describe(&self) -> String {
        self.target.clone()
    }

    async fn run(&self, cmd: &str) -> Result<CommandOutput, RemoteError> {
        let cmd = cmd.to_string();
        self.request(|reply| Request::Run { cmd, reply }).await
    }

    async fn write_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), RemoteError> {
        let (path, data) = (path.to_string(), data.to_vec());
        self.request(|reply| Request::Write {
            path,
            data,
            mode,
            reply,
        })
        .await
    }

    async fn distro(&self) -> Result<String, RemoteError> {
        Ok(self.distro.clone())
    }
}

/// The worker thread: open, serve requests until `Close` or until the remote is dropped, close.
fn worker(
    opts: GuestfsOptions,
    ready: oneshot::Sender<Result<Opened, GuestfsError>>,
    mut requests: mpsc::UnboundedReceiver<Request>,
) {
    let mut session = match Session::open(&opts) {
        Ok(session) => session,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let opened = Opened {
        root: session.root.clone(),
        distro: session.distro.clone(),
        launch_time: session.launch_time,
    };
    if ready.send(Ok(opened)).is_err() {
        // The caller gave up (cancelled) while we launched.
        let _ = session.close();
        return;
    }
    while let Some(request) = requests.blocking_recv() {
        match request {
            Request::Run { cmd, reply } => {
                let started = Instant::now();
                let result = session.run(&cmd);
                tracing::debug!(
                    "command took {:.2} s: {cmd}",
                    started.elapsed().as_secs_f64()
                );
                let _ = reply.send(result);
            }
            Request::Write {
                path,
                data,
                mode,
                reply,
            } => {
                let _ = reply.send(session.write(&path, &data, mode));
            }
            Request::Close { reply } => {
                let _ = reply.send(session.close());
                return;
            }
        }
    }
    // Every sender is gone: the remote was dropped without `close`.
    if let Err(e) = session.close() {
        tracing::warn!("{e}");
    }
}

/// Where, inside the guest, a command's stdout and stderr are collected. Removed on close.
const WORK_DIR_PREFIX: &str = "/tmp/.forge-guestfs-";

/// Commands run non-interactively as root with a conventional environment (and umask 022, as a
/// root login has): the appliance's daemon passes its own minimal one, and nobody can answer a
/// debconf prompt in an appliance.
const COMMAND_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
HOME=/root DEBIAN_FRONTEND=noninteractive";

/// guestfs `write` sends the content in one protocol message (limit 4 MiB); larger files go
/// through `upload` from a host temp file.
const WRITE_LIMIT: usize = 2 << 20;

/// The handle and what open learned; lives on the worker thread only.
struct Session {
    g: Option<guestfs::Handle>,
    image: String,
    root: String,
    distro: String,
    launch_time: Duration,
    work_dir: String,
}

impl Session {
    fn open(opts: &GuestfsOptions) -> Result<Session, GuestfsError> {
        let image = opts.image.display().to_string();
        let format = detect_format(&opts.image)?;
        let api = |operation: &'static str| {
            let image = image.clone();
            move |e: guestfs::Error| GuestfsError::Api {
                image,
                operation,
                message: error_message(&e),
            }
        };
        // On an error below, dropping the handle closes it (libguestfs autosyncs on close).
        let g = guestfs::Handle::create().map_err(api("create"))?;
        let started = Instant::now();
        g.set_network(opts.network).map_err(api("set-network"))?;
        let path = absolute(&opts.image).display().to_string();
        g.add_drive(
            &path,
            guestfs::AddDriveOptArgs {
                format: Some(&format),
                readonly: Some(opts.discard_writes),
                ..Default::default()
            },
        )
        .map_err(api("add-drive"))?;
        g.launch().map_err(api("launch"))?;
        let launch_time = started.elapsed();
        tracing::info!(
            "{image}: appliance launched in {:.1} s ({format})",
            launch_time.as_secs_f64()
        );

        let inspecting = Instant::now();
        let (root, distro) = match &opts.root_filesystem {
            // Named by hand: mount it and skip inspection, which probes every file system and
            // costs 10-15 s under TCG. The distro comes from the guest's os-release, the source
            // the SSH remote uses; secondary fstab mounts are not made (as Sahara).
            Some(dev) => {
                g.mount(dev, "/").map_err(api("mount"))?;
                let distro = read_os_release_id(&g).unwrap_or_else(|| "unknown".into());
                (dev.clone(), distro)
            }
            None => {
                let roots = g.inspect_os().map_err(api("inspect-os"))?;
                let root = match roots.as_slice() {
                    [] => return Err(GuestfsError::NoRoot { image }),
                    [one] => one.clone(),
                    several => {
                        return Err(GuestfsError::SeveralRoots {
                            image,
                            roots: several.join(", "),
                        })
                    }
                };
                mount_inspected(&g, &image, &root).map_err(api("mount"))?;
                let distro = g
                    .inspect_get_distro(&root)
                    .map_err(api("inspect-get-distro"))?;
                let distro = match os_release_id(&distro) {
                    Some(id) => id.to_string(),
                    // Inspection could not tell: ask the guest itself.
                    None => read_os_release_id(&g).unwrap_or(distro),
                };
                (root, distro)
            }
        };
        tracing::info!(
            "{image}: root {root}, distro {distro} (found and mounted in {:.1} s)",
            inspecting.elapsed().as_secs_f64()
        );
        Ok(Session {
            g: Some(g),
            image,
            root,
            distro,
            launch_time,
            work_dir: format!("{WORK_DIR_PREFIX}{}", uuid::Uuid::new_v4().simple()),
        })
    }

    fn handle(&self) -> Result<&guestfs::Handle, String> {
        self.g.as_ref().ok_or_else(|| "the image is closed".into())
    }

    /// Run `cmd` under `/bin/sh -c` in the guest. guestfs `sh` only returns stdout and fails on a
    /// non-zero exit, so the command's stdout and stderr go to files and its status is echoed:
    /// a failing command is a non-zero status here, never an error.
    fn run(&self, cmd: &str) -> Result<CommandOutput, String> {
        let g = self.handle()?;
        let d = &self.work_dir;
        let wrapper = format!(
            "mkdir -p -m 700 {d} && {{ umask 022; {COMMAND_ENV} /bin/sh -c {cmd} >{d}/out 2>{d}/err </dev/null; echo $?; }}",
            cmd = shell_quote(cmd)
        );
        let status = g
            .sh(&wrapper)
            .map_err(|e| format!("running a command: {}", error_message(&e)))?;
        let status: i32 = status
            .trim()
            .parse()
            .map_err(|_| format!("unexpected exit status {status:?}"))?;
        let read = |name: &str| {
            g.read_file(&format!("{d}/{name}"))
                .map_err(|e| format!("reading the command's {name}: {}", error_message(&e)))
        };
        Ok(CommandOutput {
            status,
            stdout: read("out")?,
            stderr: read("err")?,
        })
    }

    fn write(&self, path: &str, data: &[u8], mode: u32) -> Result<(), String> {
        let g = self.handle()?;
        let fail = |what: &str, e: guestfs::Error| format!("{what} {path}: {}", error_message(&e));
        if data.len() <= WRITE_LIMIT {
            g.write(path, data).map_err(|e| fail("writing", e))?;
        } else {
            let mut tmp = std::env::temp_dir();
            tmp.push(format!("forge-upload-{}", uuid::Uuid::new_v4().simple()));
            std::fs::write(&tmp, data).map_err(|e| format!("staging {path} on the host: {e}"))?;
            let uploaded = g.upload(&tmp.display().to_string(), path);
            let _ = std::fs::remove_file(&tmp);
            uploaded.map_err(|e| fail("uploading", e))?;
        }
        // Mode bits only: 0o7777 fits in i32.
        g.chmod((mode & 0o7777) as i32, path)
            .map_err(|e| fail("chmod", e))
    }

    /// Remove the work directory, unmount, sync, stop the appliance, free the handle.
    fn close(&mut self) -> Result<(), GuestfsError> {
        let Some(g) = self.g.take() else {
            return Ok(());
        };
        let started = Instant::now();
        let api = |operation: &'static str, e: guestfs::Error| GuestfsError::Api {
            image: self.image.clone(),
            operation,
            message: error_message(&e),
        };
        // Best effort: the directory may never have been created.
        let _ = g.rm_rf(&self.work_dir);
        let unmounted = g.umount_all().map_err(|e| api("umount-all", e));
        let synced = g.sync().map_err(|e| api("sync", e));
        // shutdown waits for qemu to exit and reports write-back errors.
        let shut = g.shutdown().map_err(|e| api("shutdown", e));
        drop(g);
        tracing::info!(
            "{}: closed in {:.1} s",
            self.image,
            started.elapsed().as_secs_f64()
        );
        unmounted.and(synced).and(shut)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!("{e}");
        }
    }
}

/// Mount the file systems of an inspected `root` as its fstab says, parents first. Only a failure
/// to mount `/` is an error: as with `guestfish -i`, a broken secondary entry is only warned about.
fn mount_inspected(g: &guestfs::Handle, image: &str, root: &str) -> Result<(), guestfs::Error> {
    let mut mounts: Vec<(String, String)> = g.inspect_get_mountpoints(root)?.into_iter().collect();
    mounts.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then(a.0.cmp(&b.0)));
    for (mountpoint, device) in mounts {
        if let Err(e) = g.mount(&device, &mountpoint) {
            if mountpoint == "/" {
                return Err(e);
            }
            tracing::warn!(
                "{image}: cannot mount {device} on {mountpoint}: {}",
                error_message(&e)
            );
        }
    }
    Ok(())
}

/// libguestfs distro names that differ from `/etc/os-release` `ID` (what the SSH remote reports),
/// mapped to the latter; `None` when inspection could not tell.
fn os_release_id(inspected: &str) -> Option<&str> {
    Some(match inspected {
        "unknown" | "" | "redhat-based" | "suse-based" => return None,
        "alpinelinux" => "alpine",
        "archlinux" => "arch",
        "kalilinux" => "kali",
        "oraclelinux" => "ol",
        "scientificlinux" => "scientific",
        "voidlinux" => "void",
        "pldlinux" => "pld",
        other => other,
    })
}

/// `ID` from the guest's `/etc/os-release` (or `/usr/lib/os-release`), unquoted.
fn read_os_release_id(g: &guestfs::Handle) -> Option<String> {
    let text = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| g.read_file(p).ok())?;
    let text = String::from_utf8_lossy(&text);
    text.lines()
        .find_map(|l| l.strip_prefix("ID="))
        .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        .filter(|v| !v.is_empty())
}

/// The message of a guestfs error. The crate (pinned at `=0.1.0`) keeps `APIError`'s fields
/// private and implements only `Debug`, so the message is taken out of that derived output.
fn error_message(e: &guestfs::Error) -> String {
    match e {
        guestfs::Error::API(api) => {
            let debug = format!("{api:?}");
            debug_field(&debug, "message").unwrap_or(debug)
        }
        guestfs::Error::IllegalString(e) => format!("a value contains a NUL byte: {e}"),
        guestfs::Error::Utf8Error(e) => format!("libguestfs returned non-UTF-8 text: {e}"),
        guestfs::Error::Create => "cannot create a libguestfs handle".into(),
    }
}

/// The string field `name` from a derived `Debug` rendering (`Struct { name: "…", … }`).
fn debug_field(debug: &str, name: &str) -> Option<String> {
    let start = debug.find(&format!("{name}: \""))? + name.len() + 3;
    let mut out = String::new();
    let mut chars = debug[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_field_unescapes() {
        let d = r#"APIError { operation: "sh", message: "a \"quoted\" line\nnext", errno: 0 }"#;
        assert_eq!(
            debug_field(d, "message").as_deref(),
            Some("a \"quoted\" line\nnext")
        );
        assert_eq!(debug_field(d, "missing"), None);
    }

    #[test]
    fn inspection_names_become_os_release_ids() {
        assert_eq!(os_release_id("debian"), Some("debian"));
        assert_eq!(os_release_id("oraclelinux"), Some("ol"));
        assert_eq!(os_release_id("unknown"), None);
    }

    #[test]
    fn format_detection_reports_a_missing_file() {
        let err = detect_format(Path::new("/nonexistent/forge-disk.qcow2")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/forge-disk.qcow2"),
            "{err}"
        );
    }
}
