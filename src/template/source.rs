//! `source` blocks: `source "openstack" "NAME"` and `source "image-file" "NAME"`.

use std::time::Duration;

use hcl::edit::structure::Block;
use secrecy::SecretString;

use super::decode::{head_span, Reader};
use super::diagnostics::Diagnostics;
use super::eval::{span_of, Scope};
use crate::openstack::config::{Located, Origin};

use super::model::{
    Auth, DiskFormat, ImageFileSource, ImageFilter, ImageSettings, OpenStackSource, Source,
    SourceImage, SourceKind, Ssh, Timeouts, UserData,
};

/// Default `image_timeout`: the new image reaching active.
const IMAGE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default `build_timeout`: the whole build.
const BUILD_TIMEOUT: Duration = Duration::from_secs(2 * 3600);

/// Decodes one `source` block; `None` when it has errors (all reported to `d`).
pub(crate) fn decode(scope: &Scope, block: &Block, d: &mut Diagnostics) -> Option<Source> {
    let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
    let [kind, _name] = labels.as_slice() else {
        d.push(scope.file.error(
            head_span(block),
            "a source block takes two labels, its type and name: source \"openstack\" \"NAME\" { ... }",
        ));
        return None;
    };
    let Some(kind) = SourceKind::from_label(kind) else {
        d.push(scope.file.error(
            span_of(&block.labels[0]),
            format!("unknown source type \"{kind}\"; expected \"openstack\" or \"image-file\""),
        ));
        return None;
    };
    let before = d.len();
    let source = match kind {
        SourceKind::OpenStack => openstack(scope, block, d).map(|s| Source::OpenStack(Box::new(s))),
        SourceKind::ImageFile => {
            image_file(scope, block, d).map(|s| Source::ImageFile(Box::new(s)))
        }
    };
    // A partially decoded source is never returned.
    source.filter(|_| d.len() == before)
}

fn openstack(scope: &Scope, block: &Block, d: &mut Diagnostics) -> Option<OpenStackSource> {
    let name = block.labels[1].as_str().to_string();
    let mut r = Reader::new(scope, block, d);
    let auth = auth(&mut r, d);

    let source_image = source_image(&mut r, d);
    let flavor = r.required_string("flavor", d);
    let networks = r.strings("networks", d).unwrap_or_default();
    let security_groups = r.strings("security_groups", d).unwrap_or_default();
    let availability_zone = r.string("availability_zone", d);
    let user_data = match (r.attr("user_data"), r.attr("user_data_file")) {
        (Some(_), Some(b)) => {
            conflict(&r, "user_data_file", span_of(&b.key), &["user_data"], d);
            None
        }
        (Some(_), None) => r.string("user_data", d).map(UserData::Inline),
        (None, Some(_)) => r.path("user_data_file", d).and_then(|(p, a)| {
            if p.is_file() {
                Some(UserData::File(p))
            } else {
                d.push(scope.file.error(
                    span_of(&a.value),
                    format!("user_data_file {} does not exist", p.display()),
                ));
                None
            }
        }),
        (None, None) => None,
    };
    let config_drive = r.bool("config_drive", d).unwrap_or(false);
    let floating_ip_network = r.string("floating_ip_network", d);

    let ssh_username = r.required_string("ssh_username", d);
    let ssh_host = r.string("ssh_host", d);
    let ssh_port = r.integer("ssh_port", 1, 65535, d).unwrap_or(22);
    let key_file = r.path("ssh_private_key_file", d);
    if let Some((p, a)) = &key_file {
        if !p.is_file() {
            d.push(scope.file.error(
                span_of(&a.value),
                format!("ssh_private_key_file {} does not exist", p.display()),
            ));
        }
    }
    let keypair_name = r.string("ssh_keypair_name", d);
    if let (Some(_), None, Some(a)) = (&keypair_name, &key_file, r.attr("ssh_keypair_name")) {
        d.push(scope.file.error(
            span_of(&a.key),
            "`ssh_keypair_name` needs `ssh_private_key_file`: forge must hold that keypair's private key",
        ));
    }

    let timeouts = Timeouts {
        ssh: r
            .duration("ssh_timeout", d)
            .unwrap_or(Duration::from_secs(5 * 60)),
        boot: r
            .duration("boot_timeout", d)
            .unwrap_or(Duration::from_secs(10 * 60)),
        image: r.duration("image_timeout", d).unwrap_or(IMAGE_TIMEOUT),
        build: r.duration("build_timeout", d).unwrap_or(BUILD_TIMEOUT),
    };

    let image = image_settings(&mut r, d);
    r.finish(d);

    Some(OpenStackSource {
        name,
        auth,
        source_image: source_image?,
        flavor: flavor?,
        networks,
        security_groups,
        availability_zone,
        user_data,
        config_drive,
        floating_ip_network,
        ssh: Ssh {
            username: ssh_username?,
            host: ssh_host,
            port: ssh_port as u16,
            private_key_file: key_file.map(|(p, _)| p),
            keypair_name,
        },
        image,
        timeouts,
    })
}

/// The cloud settings, shared by every source that publishes to Glance: Packer's access
/// attributes (`tenant_name`, `tenant_id`, `endpoint_type`, ... with Packer's meaning) and
/// forge's spellings of the same (`project_name`, `project_id`). Each value keeps its
/// `file:line:col`, so a login error names the template, not a variable; what can be checked
/// offline (URL shape, one login method, missing pieces) is reported here.
fn auth(r: &mut Reader, d: &mut Diagnostics) -> Auth {
    // Each attribute read: its name, the span of the name, the span of the value.
    let mut spans: Vec<Spans> = Vec::new();
    let mut text = |r: &mut Reader, key: &'static str, d: &mut Diagnostics| {
        let value = r.string(key, d)?;
        let a = r.attr(key)?;
        let span = span_of(&a.value);
        spans.push((key, span_of(&a.key), span.clone()));
        Some(Located::new(value, origin(r, key, span.start)))
    };
    let cloud = text(r, "cloud", d);
    let auth_url = text(r, "identity_endpoint", d);
    let region = text(r, "region", d);
    let username = text(r, "username", d);
    let user_id = text(r, "user_id", d);
    let password = text(r, "password", d);
    let user_domain_name = text(r, "user_domain_name", d);
    let project_name = text(r, "project_name", d);
    let tenant_name = text(r, "tenant_name", d);
    let project_id = text(r, "project_id", d);
    let tenant_id = text(r, "tenant_id", d);
    let project_domain_name = text(r, "project_domain_name", d);
    let domain_name = text(r, "domain_name", d);
    let domain_id = text(r, "domain_id", d);
    let token = text(r, "token", d);
    let application_credential_id = text(r, "application_credential_id", d);
    let application_credential_name = text(r, "application_credential_name", d);
    let application_credential_secret = text(r, "application_credential_secret", d);
    let interface = text(r, "endpoint_type", d);
    let insecure = r.bool("insecure", d).and_then(|v| {
        let a = r.attr("insecure")?;
        Some(Located::new(
            v,
            origin(r, "insecure", span_of(&a.value).start),
        ))
    });
    let file = |r: &mut Reader, key: &'static str, d: &mut Diagnostics| {
        let (p, a) = r.path(key, d)?;
        let span = span_of(&a.value);
        if !p.is_file() {
            d.push(r.scope.file.error(
                span.clone(),
                format!("{key} {} does not exist", p.display()),
            ));
        }
        Some(Located::new(p, origin(r, key, span.start)))
    };
    let cacert = file(r, "cacert", d);
    let cert = file(r, "cert", d);
    let key = file(r, "key", d);
    let secret =
        |l: Option<Located<String>>| l.map(|l| Located::new(SecretString::from(l.value), l.at));
    let auth = Auth {
        cloud,
        auth_url,
        region,
        username,
        user_id,
        password: secret(password),
        user_domain_name,
        project_name: alias(r, &spans, project_name, tenant_name, d),
        project_id: alias(r, &spans, project_id, tenant_id, d),
        project_domain_name,
        domain_name,
        domain_id,
        token: secret(token),
        application_credential_id,
        application_credential_name,
        application_credential_secret: secret(application_credential_secret),
        interface,
        insecure,
        cacert,
        cert,
        key,
    };
    if auth.cert.is_some() != auth.key.is_some() {
        let (set, other) = if auth.cert.is_some() {
            ("cert", "key")
        } else {
            ("key", "cert")
        };
        if let Some(a) = r.attr(set) {
            d.push(r.scope.file.error(
                span_of(&a.key),
                format!("`{set}` needs `{other}`: a client certificate takes both files"),
            ));
        }
    }
    for (at, message) in auth.check() {
        let span = match &at {
            Origin::Template { attribute, .. } => spans
                .iter()
                .find(|(k, _, _)| k == attribute)
                .map(|(_, _, s)| s.clone()),
            _ => None,
        };
        d.push(r.scope.file.error(span.unwrap_or(r.head.clone()), message));
    }
    auth
}

/// Where a template attribute's value starts.
fn origin(r: &Reader, attribute: &str, offset: usize) -> Origin {
    let (line, column) = r.scope.file.locate(offset);
    Origin::Template {
        file: r.scope.file.name.clone(),
        line,
        column,
        attribute: attribute.to_string(),
    }
}

/// An auth attribute's name, the span of its name and the span of its value.
type Spans = (&'static str, std::ops::Range<usize>, std::ops::Range<usize>);

/// One setting with two spellings (forge's, Packer's): either, but not both.
fn alias(
    r: &Reader,
    spans: &[Spans],
    forge: Option<Located<String>>,
    packer: Option<Located<String>>,
    d: &mut Diagnostics,
) -> Option<Located<String>> {
    let (Some(f), Some(p)) = (&forge, &packer) else {
        return forge.or(packer);
    };
    let find = |o: &Origin| {
        spans.iter().find(|(k, _, _)| match o {
            Origin::Template { attribute, .. } => attribute == k,
            _ => false,
        })
    };
    if let (Some(a), Some(b)) = (find(&f.at), find(&p.at)) {
        // Reported at whichever is written second.
        let (first, second) = if a.1.start < b.1.start {
            (a, b)
        } else {
            (b, a)
        };
        d.push(r.scope.file.error(
            second.1.clone(),
            format!(
                "`{}` and `{}` are the same setting (forge's and Packer's spelling): set only one",
                second.0, first.0
            ),
        ));
    }
    None
}

/// What the built image becomes (`image_name` is required), shared by every source.
fn image_settings(r: &mut Reader, d: &mut Diagnostics) -> ImageSettings {
    ImageSettings {
        name: r.required_string("image_name", d).unwrap_or_default(),
        visibility: r.visibility("image_visibility", d),
        tags: r.strings("image_tags", d).unwrap_or_default(),
        properties: r.string_map("image_properties", d).unwrap_or_default(),
        members: r.strings("image_members", d).unwrap_or_default(),
        min_disk: r.integer("image_min_disk", 0, 1 << 20, d),
    }
}

/// Reports `name` (at `span`) as conflicting with the first of `others` that is also set.
fn conflict(
    r: &Reader,
    name: &str,
    span: std::ops::Range<usize>,
    others: &[&str],
    d: &mut Diagnostics,
) {
    d.push(r.scope.file.error(
        span,
        format!(
            "`{name}` conflicts with `{}`: set only one of {}, {name}",
            others[0],
            others.join(", ")
        ),
    ));
}

/// Exactly one of `source_image`, `source_image_name`, `source_image_filter`.
fn source_image(r: &mut Reader, d: &mut Diagnostics) -> Option<SourceImage> {
    const NAMES: [&str; 3] = ["source_image", "source_image_name", "source_image_filter"];
    let id = r.attr("source_image").map(|a| span_of(&a.key));
    let by_name = r.attr("source_image_name").map(|a| span_of(&a.key));
    let filters = r.blocks("source_image_filter");
    let mut set: Vec<(&str, std::ops::Range<usize>)> = Vec::new();
    if let Some(s) = id.clone() {
        set.push((NAMES[0], s));
    }
    if let Some(s) = by_name.clone() {
        set.push((NAMES[1], s));
    }
    for f in &filters {
        set.push((NAMES[2], span_of(&f.ident)));
    }
    if set.is_empty() {
        d.push(r.scope.file.error(
            r.head.clone(),
            format!(
                "{} needs a base image: set one of {}",
                r.what,
                NAMES.join(", ")
            ),
        ));
        return None;
    }
    // Every value is still checked, so its own problems show in the same run.
    let id = id.and_then(|_| r.string("source_image", d));
    let by_name = by_name.and_then(|_| r.string("source_image_name", d));
    let filter = filters.first().and_then(|f| image_filter(r.scope, f, d));
    if set.len() > 1 {
        // Every setting after the first written one is reported where it is written.
        set.sort_by_key(|(_, span)| span.start);
        let first = set[0].0;
        for (name, span) in &set[1..] {
            let msg = if *name == first {
                format!("`{name}` is given twice")
            } else {
                format!(
                    "`{name}` conflicts with `{first}`: set only one of {}",
                    NAMES.join(", ")
                )
            };
            d.push(r.scope.file.error(span.clone(), msg));
        }
        return None;
    }
    id.map(SourceImage::Id)
        .or(by_name.map(SourceImage::Name))
        .or(filter.map(SourceImage::Filter))
}

/// `source_image_filter { filters { name owner tags visibility properties } most_recent }`.
fn image_filter(scope: &Scope, block: &Block, d: &mut Diagnostics) -> Option<ImageFilter> {
    let mut r = Reader::new(scope, block, d);
    let most_recent = r.bool("most_recent", d).unwrap_or(false);
    let filters = r.blocks("filters");
    r.finish(d);
    let Some(fb) = filters.first() else {
        d.push(scope.file.error(
            head_span(block),
            "source_image_filter needs a `filters { ... }` block (name, owner, tags, visibility, properties)",
        ));
        return None;
    };
    for extra in &filters[1..] {
        d.push(
            scope
                .file
                .error(span_of(&extra.ident), "only one `filters` block is allowed"),
        );
    }
    let mut f = Reader::new(scope, fb, d);
    let filter = ImageFilter {
        name: f.string("name", d),
        owner: f.string("owner", d),
        tags: f.strings("tags", d).unwrap_or_default(),
        visibility: f.visibility("visibility", d),
        properties: f.string_map("properties", d).unwrap_or_default(),
        most_recent,
    };
    let empty = fb.body.attributes().next().is_none();
    f.finish(d);
    if empty {
        d.push(scope.file.error(
            head_span(fb),
            "`filters` is empty; set at least one of name, owner, tags, visibility, properties",
        ));
        return None;
    }
    Some(filter)
}

fn image_file(scope: &Scope, block: &Block, d: &mut Diagnostics) -> Option<ImageFileSource> {
    let name = block.labels[1].as_str().to_string();
    let mut r = Reader::new(scope, block, d);
    let path = match r.attr("path") {
        Some(_) => r.path("path", d).and_then(|(p, a)| {
            let problem = match std::fs::metadata(&p) {
                Ok(m) if m.is_file() => return Some(p),
                Ok(_) => "is not a regular file",
                Err(_) => "does not exist",
            };
            d.push(scope.file.error(
                span_of(&a.value),
                format!("path {} {problem}; expected a disk image file", p.display()),
            ));
            None
        }),
        None => {
            r.missing("path", d);
            None
        }
    };
    let format = match r.string("format", d) {
        None => Some(DiskFormat::Qcow2),
        Some(s) => match s.as_str() {
            "qcow2" => Some(DiskFormat::Qcow2),
            "raw" => Some(DiskFormat::Raw),
            other => {
                if let Some(a) = r.attr("format") {
                    d.push(scope.file.error(
                        span_of(&a.value),
                        format!("`format` must be one of qcow2, raw, found \"{other}\""),
                    ));
                }
                None
            }
        },
    };
    let auth = auth(&mut r, d);
    let root_filesystem = r.string("root_filesystem", d).and_then(|dev| {
        if dev.starts_with("/dev/") && dev.len() > "/dev/".len() {
            return Some(dev);
        }
        let a = r.attr("root_filesystem")?;
        d.push(scope.file.error(
            span_of(&a.value),
            format!("`root_filesystem` must be a device such as \"/dev/sda1\", found \"{dev}\""),
        ));
        None
    });
    let network = r.bool("network", d).unwrap_or(false);
    let output = r.path("output", d).and_then(|(out, a)| {
        let problem = if same_file(&out, path.as_deref()) {
            "is the input `path`: a build never modifies its input".to_string()
        } else if out.is_dir() {
            "is a directory; expected a file name".to_string()
        } else {
            match out.parent().map(|p| p.is_dir()) {
                Some(true) => return Some(out),
                _ => "is in a directory that does not exist".to_string(),
            }
        };
        d.push(scope.file.error(
            span_of(&a.value),
            format!("output {} {problem}", out.display()),
        ));
        None
    });
    let image_timeout = r.duration("image_timeout", d).unwrap_or(IMAGE_TIMEOUT);
    let build_timeout = r.duration("build_timeout", d).unwrap_or(BUILD_TIMEOUT);
    let image = image_settings(&mut r, d);
    r.finish(d);
    Some(ImageFileSource {
        name,
        path: path?,
        format: format?,
        auth,
        image,
        root_filesystem,
        network,
        output,
        image_timeout,
        build_timeout,
    })
}

/// Whether `output` names the file `input` (which exists); `output` itself may not exist yet.
fn same_file(output: &std::path::Path, input: Option<&std::path::Path>) -> bool {
    let Some(input) = input.and_then(|i| i.canonicalize().ok()) else {
        return false;
    };
    let parent = output.parent().and_then(|p| p.canonicalize().ok());
    match (parent, output.file_name()) {
        (Some(dir), Some(name)) => dir.join(name) == input,
        _ => false,
    }
}
