//! spcat's command line: nngcat's option syntax, parsed with clap, then validated by nngcat's
//! rules (spec 7.1, 7.2 and 8.7).
//!
//! Parsing happens in two steps:
//!
//! 1. [`normalize`] walks argv the way NNG's `nng_opts_parse` does and rewrites every option
//!    to a canonical `--name` or `--name=value` token: it accepts `--opt=value`,
//!    `--opt:value`, `--opt value`, `-Xvalue` and `-X value`, expands unique abbreviations of
//!    long names, reports ambiguous ones ("Option --re is ambiguous (specify in full)."),
//!    refuses clustered short options (`-AQ`), and stops at the first non-option argument
//!    (nngcat ignores everything from there on).
//! 2. clap ([`command`]) stores the canonical tokens; [`config_from_matches`] applies nngcat's
//!    checks in nngcat's order and builds a [`Config`].

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::format::Format;
use crate::runtime::RuntimeKind;
use crate::socket::{Protocol, Role};

/// The program name used in messages.
pub const PROG: &str = "spcat";

/// One entry of spcat's option table (the same names as nngcat's, so that abbreviations
/// resolve, and are ambiguous, exactly as they do for nngcat).
#[derive(Clone, Copy, Debug)]
pub struct OptSpec {
    /// Long name without dashes.
    pub long: &'static str,
    /// Short letter, if any.
    pub short: Option<char>,
    /// Whether the option takes a value.
    pub takes_value: bool,
}

const fn flag(long: &'static str, short: Option<char>) -> OptSpec {
    OptSpec {
        long,
        short,
        takes_value: false,
    }
}

const fn value(long: &'static str, short: Option<char>) -> OptSpec {
    OptSpec {
        long,
        short,
        takes_value: true,
    }
}

/// nngcat 1.5's option table, in its order.
pub const OPTIONS: &[OptSpec] = &[
    flag("help", Some('h')),
    flag("verbose", Some('v')),
    flag("silent", Some('q')),
    flag("req0", None),
    flag("rep0", None),
    flag("push0", None),
    flag("pull0", None),
    flag("pub0", None),
    flag("sub", None), // explicit, so that `--sub` is not a prefix of `sub0` and `subscribe`
    flag("sub0", None),
    flag("surveyor0", None),
    flag("respondent0", None),
    flag("pair", None),
    flag("pair0", None),
    flag("pair1", None),
    flag("bus0", None),
    // macat's, not nngcat's.
    flag("star", None),
    value("dial", None),
    value("listen", None),
    value("data", Some('D')),
    value("file", Some('F')),
    value("subscribe", None),
    value("format", None),
    flag("ascii", Some('A')),
    flag("quoted", Some('Q')),
    flag("raw", None),
    flag("hex", None),
    flag("compat", None),
    flag("async", None),
    flag("msgpack", None),
    value("recv-maxsz", Some('Z')),
    value("count", Some('C')),
    value("delay", Some('d')),
    value("interval", Some('i')),
    value("recv-timeout", None),
    value("send-timeout", None),
    value("socket-name", None),
    value("bind", None),
    value("connect", None),
    value("bind-ipc", Some('X')),
    value("connect-ipc", Some('x')),
    value("bind-local", Some('L')),
    value("connect-local", Some('l')),
    flag("insecure", Some('k')),
    value("cacert", None),
    value("key", None),
    value("cert", Some('E')),
    value("zt-home", None),
    flag("version", Some('V')),
    // spcat's own, not nngcat's.
    value("runtime", None),
];

/// Protocol flags and what they select.
const PROTOCOL_FLAGS: &[(&str, ProtoChoice)] = &[
    ("req0", ProtoChoice::Exact(Protocol::Req0)),
    ("rep0", ProtoChoice::Exact(Protocol::Rep0)),
    ("push0", ProtoChoice::Exact(Protocol::Push0)),
    ("pull0", ProtoChoice::Exact(Protocol::Pull0)),
    ("pub0", ProtoChoice::Exact(Protocol::Pub0)),
    ("sub", ProtoChoice::Exact(Protocol::Sub0)),
    ("sub0", ProtoChoice::Exact(Protocol::Sub0)),
    ("surveyor0", ProtoChoice::Exact(Protocol::Surveyor0)),
    ("respondent0", ProtoChoice::Exact(Protocol::Respondent0)),
    ("pair", ProtoChoice::Pair),
    ("pair0", ProtoChoice::Exact(Protocol::Pair0)),
    ("pair1", ProtoChoice::Exact(Protocol::Pair1)),
    ("bus0", ProtoChoice::Exact(Protocol::Bus0)),
    ("star", ProtoChoice::Exact(Protocol::Star)),
];

const FORMAT_FLAGS: &[(&str, Format)] = &[
    ("raw", Format::Raw),
    ("ascii", Format::Ascii),
    ("quoted", Format::Quoted),
    ("msgpack", Format::Msgpack),
    ("hex", Format::Hex),
];

/// Address options: (name, listens?, how the value becomes a URL).
const ADDRESS_OPTIONS: &[(&str, bool, AddrKind)] = &[
    ("dial", false, AddrKind::Url),
    ("connect", false, AddrKind::Url),
    ("listen", true, AddrKind::Url),
    ("bind", true, AddrKind::Url),
    ("connect-local", false, AddrKind::LocalPort),
    ("bind-local", true, AddrKind::LocalPort),
    ("connect-ipc", false, AddrKind::IpcPath),
    ("bind-ipc", true, AddrKind::IpcPath),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProtoChoice {
    Exact(Protocol),
    /// `--pair`: pair1, or pair0 under `--compat`.
    Pair,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AddrKind {
    Url,
    LocalPort,
    IpcPath,
}

/// Where a dial or listen goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Connect to this URL.
    Dial(String),
    /// Listen on this URL.
    Listen(String),
}

impl Endpoint {
    /// The URL.
    pub fn url(&self) -> &str {
        match self {
            Endpoint::Dial(u) | Endpoint::Listen(u) => u,
        }
    }
}

/// Where the payload to send comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--data`: the argument's bytes.
    Data(Vec<u8>),
    /// `--file`: the file's contents; `-` means standard input.
    File(OsString),
}

pub use crate::tls::TlsOptions;

/// Everything a run needs, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The protocol (may still be one this build does not implement).
    pub protocol: Protocol,
    /// Dials and listens, in command-line order.
    pub endpoints: Vec<Endpoint>,
    /// Output format; `None` prints nothing (nngcat's default).
    pub format: Option<Format>,
    /// Payload source, if any.
    pub source: Option<Source>,
    /// `--count`: 0 = unlimited.
    pub count: u32,
    /// `--delay` before the first send.
    pub delay: Duration,
    /// `--interval` between sends; `None` sends once.
    pub interval: Option<Duration>,
    /// `--send-timeout` (0 or absent: wait forever).
    pub send_timeout: Option<Duration>,
    /// `--recv-timeout` (0 or absent: wait forever).
    pub recv_timeout: Option<Duration>,
    /// `--recv-maxsz` (0 becomes 2^31-1); `None` keeps the socket default.
    pub recv_maxsz: Option<usize>,
    /// `--subscribe` topics (SUB only; `[""]` when none given).
    pub subscriptions: Vec<Vec<u8>>,
    /// Number of `-v` (0 when the last of `-v`/`-q` was `-q`).
    pub verbose: u8,
    /// `--compat`.
    pub compat: bool,
    /// Dial in the background (`--async`, or implied by `--compat`).
    pub async_dial: bool,
    /// `--socket-name` (accepted, ignored).
    pub socket_name: Option<OsString>,
    /// `--runtime` (spcat's own option): the adapter to run on. Default: tokio.
    pub runtime: RuntimeKind,
    /// `--insecure`, `--cacert`, `--cert`, `--key`.
    pub tls: TlsOptions,
}

/// The outcome of parsing a command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Run with this configuration.
    Run(Box<Config>),
    /// `-h/--help`: print the usage text (and exit 1, as nngcat does).
    Help,
    /// `-V/--version`: print the version.
    Version,
}

/// A command-line error; printed as `spcat: <message>`, exit status 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliError(pub String);

impl CliError {
    fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

/// The usage text (nngcat's, with spcat's name and notes).
pub fn usage() -> String {
    format!(
        "Usage: {PROG} <proto> <addr>... [<fmt>] [<opts>...] [<src>]

<proto> must be one of:
  --req0                 (or alias --req)
  --rep0                 (or alias --rep)
  --pub0                 (or alias --pub)
  --sub0                 (or alias --sub)
  --push0                (or alias --push)
  --pull0                (or alias --pull)
  --surveyor0            (or alias --surveyor)
  --respondent0          (or alias --respondent)
  --bus0                 (or alias --bus)
  --pair0
  --pair1
  --pair                 (alias for pair1, or pair0 with --compat)
  --star                 (mangos' STAR, as macat)

<addr> must be one or more of:
  --dial <url>           (or alias --connect <url>)
  --listen <url>         (or alias --bind <url>)
  --bind-local <port>    (or alias -L <port>)
  --connect-local <port> (or alias -l <port>)
  --bind-ipc <path>      (or alias -X <path>)
  --connect-ipc <path>   (or alias -x <path>)

<fmt> may be one or none of:
  --format <no|ascii|hex|msgpack|quoted|raw>
  --ascii                (or alias -A)
  --quoted               (or alias -Q)
  --hex
  --msgpack
  --raw

<opts> may be any of:
  --subscribe <topic>    (only with --sub protocol)
  --silent               (or alias -q)
  --verbose              (or alias -v)
  --count <num>          (or alias -C <num>)
  --delay <secs>         (or alias -d <secs>)
  --interval <secs>      (or alias -i <secs>)
  --recv-timeout <secs>
  --send-timeout <secs>
  --recv-maxsz <size>    (or alias -Z <size>)
  --compat
  --async
  --insecure             (or alias -k)
  --cacert <file>
  --cert <file>          (or alias -E <file>)
  --key <file>
  --version              (or alias -V)
  --runtime <tokio|smol|blocking>  (spcat only; default tokio)

<src> may be one of:
  --file <file>          (or alias -F <file>). Use - for standard input.
  --data <data>          (or alias -D <data>)

Options may be given as --opt=value, --opt:value or --opt value (short: -Xvalue or
-X value); long names may be abbreviated while unique. Transports: tcp://, ipc://, inproc://.
"
    )
}

/// The clap command that stores canonical `--name[=value]` tokens (see [`normalize`]).
pub fn command() -> Command {
    let mut cmd = Command::new(PROG)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .infer_long_args(true)
        .override_usage(format!(
            "{PROG} <proto> <addr>... [<fmt>] [<opts>...] [<src>]"
        ));
    for spec in OPTIONS {
        let mut arg = Arg::new(spec.long).long(spec.long);
        if let Some(c) = spec.short {
            arg = arg.short(c);
        }
        arg = if spec.takes_value {
            arg.action(ArgAction::Append)
                .num_args(1)
                .allow_hyphen_values(true)
                .value_parser(clap::value_parser!(OsString))
        } else {
            arg.action(ArgAction::Count)
        };
        cmd = cmd.arg(arg);
    }
    cmd
}

fn find_long(name: &[u8]) -> Result<&'static OptSpec, LookupError> {
    let mut found: Option<&'static OptSpec> = None;
    let mut matches = 0;
    for spec in OPTIONS {
        let long = spec.long.as_bytes();
        if long == name {
            return Ok(spec);
        }
        if long.starts_with(name) {
            matches += 1;
            found = Some(spec);
        }
    }
    match (matches, found) {
        (1, Some(spec)) => Ok(spec),
        (0, _) => Err(LookupError::Invalid),
        _ => Err(LookupError::Ambiguous),
    }
}

enum LookupError {
    Invalid,
    Ambiguous,
}

fn lookup_error(e: LookupError, token: &OsStr) -> CliError {
    let token = token.to_string_lossy();
    match e {
        LookupError::Invalid => CliError(format!("Option {token} is invalid.")),
        LookupError::Ambiguous => {
            CliError(format!("Option {token} is ambiguous (specify in full)."))
        }
    }
}

fn canonical(spec: &OptSpec, value: Option<&[u8]>) -> OsString {
    let mut tok = OsString::from(format!("--{}", spec.long));
    if let Some(v) = value {
        tok.push("=");
        // The value bytes come from an OsStr split after an ASCII byte, so they stay valid.
        tok.push(os_from_bytes(v));
    }
    tok
}

#[cfg(unix)]
fn os_from_bytes(b: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(b).to_os_string()
}

#[cfg(not(unix))]
fn os_from_bytes(b: &[u8]) -> OsString {
    OsString::from(String::from_utf8_lossy(b).into_owned())
}

/// Rewrites nngcat-style argv (program name first) into canonical clap tokens.
///
/// # Errors
/// Unknown, ambiguous or clustered options, and options missing their value.
pub fn normalize(argv: &[OsString]) -> Result<Vec<OsString>, CliError> {
    let mut out = Vec::with_capacity(argv.len());
    out.push(
        argv.first()
            .cloned()
            .unwrap_or_else(|| OsString::from(PROG)),
    );
    let mut i = 1;
    while i < argv.len() {
        let token = &argv[i];
        let bytes = token.as_encoded_bytes();
        if bytes.first() != Some(&b'-') || bytes == b"-" {
            // nngcat stops at the first non-option argument (or a lone "-") and ignores
            // the rest of the command line.
            break;
        }
        let (spec, inline): (&OptSpec, Option<&[u8]>) =
            if let Some(body) = bytes.strip_prefix(b"--") {
                let split = body.iter().position(|&b| b == b'=' || b == b':');
                let (name, inline) = match split {
                    Some(p) => (&body[..p], Some(&body[p + 1..])),
                    None => (body, None),
                };
                if name.is_empty() {
                    return Err(lookup_error(LookupError::Invalid, token));
                }
                let spec = find_long(name).map_err(|e| lookup_error(e, token))?;
                (spec, inline)
            } else {
                let c = bytes[1];
                let spec = OPTIONS
                    .iter()
                    .find(|s| s.short.is_some_and(|sc| sc.is_ascii() && sc as u8 == c))
                    .ok_or_else(|| lookup_error(LookupError::Invalid, token))?;
                let rest = &bytes[2..];
                (spec, if rest.is_empty() { None } else { Some(rest) })
            };
        if !spec.takes_value {
            if inline.is_some() {
                // `--raw=x`, or clustered short options such as `-AQ`.
                return Err(lookup_error(LookupError::Invalid, token));
            }
            out.push(canonical(spec, None));
        } else {
            match inline {
                Some(v) => out.push(canonical(spec, Some(v))),
                None => {
                    i += 1;
                    let Some(v) = argv.get(i) else {
                        return Err(CliError(format!(
                            "Option {} requires argument.",
                            token.to_string_lossy()
                        )));
                    };
                    out.push(canonical(spec, Some(v.as_encoded_bytes())));
                }
            }
        }
        i += 1;
    }
    Ok(out)
}

/// Parses a full argv (program name first).
///
/// # Errors
/// Any violation of nngcat's rules, with nngcat's message.
pub fn parse<I, T>(argv: I) -> Result<Parsed, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let canonical = normalize(&argv)?;
    let matches = command().try_get_matches_from(canonical).map_err(|e| {
        CliError(
            e.render()
                .to_string()
                .trim()
                .trim_start_matches("error: ")
                .to_string(),
        )
    })?;
    config_from_matches(&matches)
}

fn count(m: &ArgMatches, id: &str) -> u8 {
    m.get_count(id)
}

fn last_value<'a>(m: &'a ArgMatches, id: &str) -> Option<&'a OsString> {
    m.get_many::<OsString>(id).and_then(|mut v| v.next_back())
}

fn all_values<'a>(m: &'a ArgMatches, id: &str) -> impl Iterator<Item = &'a OsString> {
    m.get_many::<OsString>(id).into_iter().flatten()
}

fn last_index(m: &ArgMatches, id: &str) -> Option<usize> {
    // Count flags have an implicit default, which has an index too: only count real uses.
    if m.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
        return None;
    }
    m.indices_of(id).and_then(|mut i| i.next_back())
}

fn utf8<'a>(v: &'a OsStr, opt: &str) -> Result<&'a str, CliError> {
    v.to_str()
        .ok_or_else(|| CliError(format!("Option --{opt}: argument is not valid UTF-8.")))
}

/// nngcat's `intarg`: decimal digits only, at most `max`.
///
/// # Errors
/// `Empty integer argument.`, `Integer argument expected.`, `Integer argument too large.`
pub fn int_arg(v: &str, max: u64) -> Result<u64, CliError> {
    if v.is_empty() {
        return Err(CliError::new("Empty integer argument."));
    }
    let mut n: u64 = 0;
    for c in v.bytes() {
        if !c.is_ascii_digit() {
            return Err(CliError::new("Integer argument expected."));
        }
        n = n * 10 + u64::from(c - b'0');
        if n > max {
            return Err(CliError::new("Integer argument too large."));
        }
    }
    Ok(n)
}

fn int_opt(m: &ArgMatches, id: &str, max: u64) -> Result<Option<u64>, CliError> {
    // Every occurrence is checked, as nngcat parses each one; the last one wins.
    let mut last = None;
    for v in all_values(m, id) {
        let s = utf8(v, id)?;
        last = Some(int_arg(s, max).map_err(|e| CliError(format!("Option --{id}: {}", e.0)))?);
    }
    Ok(last)
}

const DAY_SECS: u64 = 86_400;
const INT_MAX: u64 = 0x7fff_ffff;

/// Turns an nngcat `-X/-x` path into its URL: always absolute (`ipc:///path`). Leading
/// slashes of the path are folded into the URL's one, which names the same file.
pub fn ipc_url(path: &str) -> String {
    format!("ipc:///{}", path.trim_start_matches('/'))
}

/// Turns an nngcat `-L/-l` port into its URL.
pub fn local_url(port: u64) -> String {
    format!("tcp://127.0.0.1:{port}")
}

fn endpoints(m: &ArgMatches) -> Result<Vec<Endpoint>, CliError> {
    let mut found: Vec<(usize, Endpoint)> = Vec::new();
    for &(id, listens, kind) in ADDRESS_OPTIONS {
        let (Some(values), Some(indices)) = (m.get_many::<OsString>(id), m.indices_of(id)) else {
            continue;
        };
        for (v, idx) in values.zip(indices) {
            let s = utf8(v, id)?;
            let url = match kind {
                AddrKind::Url => s.to_string(),
                AddrKind::LocalPort => local_url(
                    int_arg(s, 65536).map_err(|e| CliError(format!("Option --{id}: {}", e.0)))?,
                ),
                AddrKind::IpcPath => ipc_url(s),
            };
            found.push((
                idx,
                if listens {
                    Endpoint::Listen(url)
                } else {
                    Endpoint::Dial(url)
                },
            ));
        }
    }
    found.sort_by_key(|(idx, _)| *idx);
    Ok(found.into_iter().map(|(_, e)| e).collect())
}

fn secs(v: Option<u64>) -> Option<Duration> {
    v.map(Duration::from_secs)
}

/// Builds and validates a [`Config`] from clap's matches, with nngcat's checks in nngcat's
/// order.
///
/// # Errors
/// Any violation of nngcat's rules.
pub fn config_from_matches(m: &ArgMatches) -> Result<Parsed, CliError> {
    if count(m, "help") > 0 {
        return Ok(Parsed::Help);
    }
    if count(m, "version") > 0 {
        return Ok(Parsed::Version);
    }

    // Things nngcat checks while parsing.
    let mut choice = None;
    for &(id, c) in PROTOCOL_FLAGS {
        for _ in 0..count(m, id) {
            if choice.is_some() {
                return Err(CliError::new("Only one protocol may be specified."));
            }
            choice = Some(c);
        }
    }

    let mut format = None;
    let mut formats = 0usize;
    for &(id, f) in FORMAT_FLAGS {
        formats += usize::from(count(m, id));
        if count(m, id) > 0 {
            format = Some(f);
        }
    }
    for v in all_values(m, "format") {
        formats += 1;
        let name = v.to_str().unwrap_or("");
        format = Some(
            Format::from_name(name).ok_or_else(|| CliError::new("Invalid format specified."))?,
        );
    }
    if formats > 1 {
        return Err(CliError::new("Format may be specified only once."));
    }

    let datas: Vec<&OsString> = all_values(m, "data").collect();
    let files: Vec<&OsString> = all_values(m, "file").collect();
    if datas.len() + files.len() > 1 {
        return Err(CliError::new(
            "Data (--file, --data) may be specified only once.",
        ));
    }
    let source = match (datas.first(), files.first()) {
        (Some(d), _) => Some(Source::Data(d.as_encoded_bytes().to_vec())),
        (_, Some(f)) => Some(Source::File((*f).clone())),
        _ => None,
    };

    let count_n = int_opt(m, "count", INT_MAX)?.unwrap_or(0) as u32;
    let delay = int_opt(m, "delay", DAY_SECS)?.unwrap_or(0);
    let interval = int_opt(m, "interval", DAY_SECS)?;
    let send_timeout = int_opt(m, "send-timeout", DAY_SECS)?;
    let recv_timeout = int_opt(m, "recv-timeout", DAY_SECS)?;
    let recv_maxsz =
        int_opt(m, "recv-maxsz", INT_MAX)?
            .map(|n| if n == 0 { INT_MAX as usize } else { n as usize });

    for id in ["cacert", "key", "cert"] {
        if all_values(m, id).count() > 1 {
            return Err(CliError(format!(
                "Option --{id} may be specified only once."
            )));
        }
    }
    let tls = TlsOptions {
        insecure: count(m, "insecure") > 0,
        cacert: last_value(m, "cacert").cloned(),
        cert: last_value(m, "cert").cloned(),
        key: last_value(m, "key").cloned(),
    };

    let endpoints = endpoints(m)?;

    let verbose = match (last_index(m, "verbose"), last_index(m, "silent")) {
        (Some(v), Some(q)) if q > v => 0,
        _ => count(m, "verbose"),
    };
    let subscriptions: Vec<Vec<u8>> = all_values(m, "subscribe")
        .map(|t| t.as_encoded_bytes().to_vec())
        .collect();
    let compat = count(m, "compat") > 0;
    let mut async_dial = count(m, "async") > 0;
    let runtime = match last_value(m, "runtime") {
        None => RuntimeKind::Tokio,
        Some(v) => v
            .to_str()
            .unwrap_or("")
            .parse::<RuntimeKind>()
            .map_err(CliError)?,
    };

    // Checks nngcat makes after parsing.
    if tls.key.is_some() && tls.cert.is_none() {
        return Err(CliError::new(
            "Option --key requires --cert (the certificate the key belongs to).",
        ));
    }
    if endpoints.is_empty() {
        return Err(CliError::new("No address specified."));
    }
    let protocol = if compat {
        if async_dial {
            return Err(CliError::new(
                "Options --async and --compat are incompatible.",
            ));
        }
        if count_n != 0 {
            return Err(CliError::new(
                "Options --count and --compat are incompatible.",
            ));
        }
        async_dial = true;
        match choice {
            Some(ProtoChoice::Pair) => Some(Protocol::Pair0),
            Some(ProtoChoice::Exact(Protocol::Pair1)) => {
                return Err(CliError::new("Protocol does not support --compat."));
            }
            Some(ProtoChoice::Exact(p)) => Some(p),
            None => None,
        }
    } else {
        match choice {
            Some(ProtoChoice::Pair) => Some(Protocol::Pair1),
            Some(ProtoChoice::Exact(p)) => Some(p),
            None => None,
        }
    };
    let mut subscriptions = subscriptions;
    if protocol == Some(Protocol::Sub0) {
        if subscriptions.is_empty() {
            subscriptions.push(Vec::new()); // subscribe to everything
        }
    } else if !subscriptions.is_empty() {
        return Err(CliError::new("Protocol does not support --subscribe."));
    }

    if let Some(p) = protocol {
        match p.role() {
            Role::RecvOnly => {
                if source.is_some() {
                    return Err(CliError::new("Protocol does not support --file or --data."));
                }
                if interval.is_some() {
                    return Err(CliError::new("Protocol does not support --interval."));
                }
            }
            Role::SendOnly => {
                if format.is_some() {
                    return Err(CliError::new("Protocol does not support --format options."));
                }
                if source.is_none() {
                    return Err(CliError::new("Protocol requires either --file or --data."));
                }
            }
            Role::Requester => {
                if source.is_none() {
                    return Err(CliError::new("Protocol requires either --file or --data."));
                }
            }
            Role::Responder => {
                if interval.is_some() {
                    return Err(CliError::new("Protocol does not support --interval."));
                }
            }
            Role::Peer => {
                if interval.is_some() && source.is_none() {
                    return Err(CliError::new(
                        "Option --interval requires either --file or --data.",
                    ));
                }
            }
        }
    }
    let Some(protocol) = protocol else {
        return Err(CliError::new("No protocol specified."));
    };

    Ok(Parsed::Run(Box::new(Config {
        protocol,
        endpoints,
        format,
        source,
        count: count_n,
        delay: Duration::from_secs(delay),
        interval: secs(interval),
        // nngcat only sets the timeouts when they are positive: 0 means "wait forever".
        send_timeout: secs(send_timeout.filter(|&s| s > 0)),
        recv_timeout: secs(recv_timeout.filter(|&s| s > 0)),
        recv_maxsz,
        subscriptions,
        verbose,
        compat,
        async_dial,
        socket_name: last_value(m, "socket-name").cloned(),
        runtime,
        tls,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_v(args: &[&str]) -> Result<Parsed, CliError> {
        parse(std::iter::once("spcat").chain(args.iter().copied()))
    }

    fn run(args: &[&str]) -> Config {
        match parse_v(args) {
            Ok(Parsed::Run(c)) => *c,
            other => panic!("{args:?}: expected a config, got {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match parse_v(args) {
            Err(e) => e.0,
            Ok(p) => panic!("{args:?}: expected an error, got {p:?}"),
        }
    }

    const D: &str = "--dial=tcp://127.0.0.1:1";

    #[test]
    fn clap_command_is_consistent() {
        command().debug_assert();
    }

    // ---- 8.7 #90: exactly one protocol ----

    #[test]
    fn no_protocol_is_an_error() {
        assert_eq!(err(&[D]), "No protocol specified.");
        assert_eq!(err(&[D, "-D", "x"]), "No protocol specified.");
    }

    #[test]
    fn two_protocols_are_an_error() {
        assert_eq!(
            err(&["--req0", "--rep0", D]),
            "Only one protocol may be specified."
        );
        assert_eq!(
            err(&["--push", "--pull", D]),
            "Only one protocol may be specified."
        );
        assert_eq!(
            err(&["--pair0", "--pair0", D]),
            "Only one protocol may be specified."
        );
        assert_eq!(
            err(&["--sub", "--sub0", D]),
            "Only one protocol may be specified."
        );
        assert_eq!(
            err(&["--pair", "--pair1", D]),
            "Only one protocol may be specified."
        );
    }

    #[test]
    fn each_protocol_flag_and_alias() {
        let cases: &[(&str, Protocol)] = &[
            ("--req0", Protocol::Req0),
            ("--req", Protocol::Req0),
            ("--rep0", Protocol::Rep0),
            ("--rep", Protocol::Rep0),
            ("--push0", Protocol::Push0),
            ("--push", Protocol::Push0),
            ("--pull0", Protocol::Pull0),
            ("--pull", Protocol::Pull0),
            ("--pub0", Protocol::Pub0),
            ("--pub", Protocol::Pub0),
            ("--sub0", Protocol::Sub0),
            ("--sub", Protocol::Sub0),
            ("--surveyor0", Protocol::Surveyor0),
            ("--surveyor", Protocol::Surveyor0),
            ("--surv", Protocol::Surveyor0),
            ("--respondent0", Protocol::Respondent0),
            ("--respondent", Protocol::Respondent0),
            ("--bus0", Protocol::Bus0),
            ("--bus", Protocol::Bus0),
            ("--pair0", Protocol::Pair0),
            ("--pair1", Protocol::Pair1),
            ("--pair", Protocol::Pair1),
            ("--star", Protocol::Star),
        ];
        for &(flag, proto) in cases {
            let mut args = vec![flag, D];
            if matches!(proto.role(), Role::SendOnly | Role::Requester) {
                args.extend(["-D", "x"]);
            }
            assert_eq!(run(&args).protocol, proto, "{flag}");
        }
    }

    #[test]
    fn pair_means_pair0_under_compat() {
        let c = run(&["--pair", "--compat", D]);
        assert_eq!(c.protocol, Protocol::Pair0);
        assert!(c.compat);
        assert!(c.async_dial, "--compat makes dials asynchronous");
    }

    // ---- 8.7 #91: ambiguous abbreviations ----

    #[test]
    fn ambiguous_abbreviation() {
        let e = err(&["--re", D]);
        assert!(e.contains("ambiguous"), "{e}");
        assert_eq!(e, "Option --re is ambiguous (specify in full).");
        assert!(err(&["--pu", D]).contains("ambiguous"));
        assert!(err(&["--ver"]).contains("ambiguous"));
        assert!(err(&["--pull", "--co=tcp://x"]).contains("ambiguous"));
        assert!(err(&["--pull", "--bind-", "x"]).contains("ambiguous"));
        assert!(err(&["--pair", D, "--s", "x"]).contains("ambiguous"));
    }

    #[test]
    fn unique_abbreviations_and_exact_names() {
        let c = run(&["--pull", "--lis=tcp://127.0.0.1:5", "--recv-t", "3", "--qu"]);
        assert_eq!(c.endpoints, [Endpoint::Listen("tcp://127.0.0.1:5".into())]);
        assert_eq!(c.recv_timeout, Some(Duration::from_secs(3)));
        assert_eq!(c.format, Some(Format::Quoted));
        // "sub" is exact even though "sub0" and "subscribe" start with it.
        assert_eq!(
            run(&["--sub", D, "--subs", "a"]).subscriptions,
            [b"a".to_vec()]
        );
        // "pair" is exact even though "pair0" and "pair1" start with it.
        assert_eq!(run(&["--pair", D]).protocol, Protocol::Pair1);
        // "bind" is exact even though "bind-ipc" and "bind-local" start with it.
        assert_eq!(
            run(&["--pull", "--bind", "inproc://a"]).endpoints,
            [Endpoint::Listen("inproc://a".into())]
        );
    }

    #[test]
    fn unknown_and_malformed_options() {
        assert_eq!(err(&["--pull", D, "--bogus"]), "Option --bogus is invalid.");
        assert_eq!(err(&["--pull", D, "-AQ"]), "Option -AQ is invalid.");
        assert_eq!(err(&["--pull", D, "--raw=1"]), "Option --raw=1 is invalid.");
        assert_eq!(err(&["--pull", D, "-y"]), "Option -y is invalid.");
        assert_eq!(err(&["--pull", D, "--"]), "Option -- is invalid.");
        assert_eq!(
            err(&["--pull", "--dial"]),
            "Option --dial requires argument."
        );
        assert_eq!(err(&["--pull", "-L"]), "Option -L requires argument.");
    }

    // ---- 8.7 #92: incompatible flags ----

    #[test]
    fn subscribe_with_req_is_refused() {
        assert_eq!(
            err(&[
                "--req0",
                "-x",
                "/tmp/bogusipc",
                "--subscribe=oops",
                "-D",
                "x"
            ]),
            "Protocol does not support --subscribe."
        );
        assert_eq!(
            err(&["--req0", "-x", "/tmp/bogusipc", "--subscribe=oops"]),
            "Protocol does not support --subscribe."
        );
        assert_eq!(
            err(&["--pull", D, "--subscribe", ""]),
            "Protocol does not support --subscribe."
        );
    }

    #[test]
    fn interval_with_pull_is_refused() {
        assert_eq!(
            err(&["--interval", "1", "--pull", "-x", "/tmp/bogusipc"]),
            "Protocol does not support --interval."
        );
        assert_eq!(
            err(&["-i1", "--sub", D]),
            "Protocol does not support --interval."
        );
        assert_eq!(
            err(&["-i", "1", "--rep", D, "-D", "x"]),
            "Protocol does not support --interval."
        );
    }

    #[test]
    fn compat_with_pair1_is_refused() {
        assert_eq!(
            err(&["--compat", "--pair1", "-x", "/tmp/bogusipc"]),
            "Protocol does not support --compat."
        );
    }

    #[test]
    fn compat_with_count_is_refused() {
        assert_eq!(
            err(&["--compat", "--count=1", "--pair0", "-x", "/tmp/bogusipc"]),
            "Options --count and --compat are incompatible."
        );
        assert_eq!(
            err(&["--compat", "--async", "--pair0", D]),
            "Options --async and --compat are incompatible."
        );
    }

    #[test]
    fn non_integer_count_is_refused() {
        assert_eq!(
            err(&["--count=xyz", "--pair0", "-x", "/tmp/bogusipc"]),
            "Option --count: Integer argument expected."
        );
        assert!(err(&["--pull", D, "-C", "1.5"]).contains("Integer argument expected"));
        assert!(err(&["--pull", D, "-C", "-1"]).contains("Integer argument expected"));
        assert!(err(&["--pull", D, "-C", ""]).contains("Empty integer argument"));
        assert!(err(&["--pull", D, "-C", "2147483648"]).contains("too large"));
        assert_eq!(run(&["--pull", D, "-C", "2147483647"]).count, 2147483647);
        assert_eq!(run(&["--pull", D, "-C0"]).count, 0);
    }

    // ---- per-protocol data/format rules (spec 7.2) ----

    #[test]
    fn data_rules() {
        assert_eq!(
            err(&["--pull", D, "-D", "x"]),
            "Protocol does not support --file or --data."
        );
        assert_eq!(
            err(&["--sub", D, "-F", "/etc/hostname"]),
            "Protocol does not support --file or --data."
        );
        assert_eq!(
            err(&["--push", D]),
            "Protocol requires either --file or --data."
        );
        assert_eq!(
            err(&["--req", D]),
            "Protocol requires either --file or --data."
        );
        assert_eq!(
            err(&["--surveyor", D]),
            "Protocol requires either --file or --data."
        );
        assert_eq!(
            err(&["--pair0", D, "-i", "1"]),
            "Option --interval requires either --file or --data."
        );
        assert_eq!(
            err(&["--push", D, "-D", "a", "-D", "b"]),
            "Data (--file, --data) may be specified only once."
        );
        assert_eq!(
            err(&["--push", D, "-D", "a", "-F", "-"]),
            "Data (--file, --data) may be specified only once."
        );
        // Allowed combinations.
        assert_eq!(run(&["--rep", D]).source, None);
        assert_eq!(
            run(&["--rep", D, "-Dpong"]).source,
            Some(Source::Data(b"pong".to_vec()))
        );
        assert_eq!(
            run(&["--pair0", D, "-i", "1", "-D", "x"]).interval,
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            run(&["--push", D, "--file", "-"]).source,
            Some(Source::File("-".into()))
        );
        assert_eq!(
            run(&["--push", D, "-F-"]).source,
            Some(Source::File("-".into()))
        );
    }

    #[test]
    fn format_rules() {
        assert_eq!(
            err(&["--push", D, "-D", "x", "--raw"]),
            "Protocol does not support --format options."
        );
        assert_eq!(
            err(&["--pub", D, "-D", "x", "--format=no"]),
            "Protocol does not support --format options."
        );
        assert_eq!(
            err(&["--pull", D, "--raw", "--hex"]),
            "Format may be specified only once."
        );
        assert_eq!(
            err(&["--pull", D, "-A", "--format", "ascii"]),
            "Format may be specified only once."
        );
        assert_eq!(
            err(&["--pull", D, "-Q", "-Q"]),
            "Format may be specified only once."
        );
        assert_eq!(
            err(&["--pull", D, "--format", "text"]),
            "Invalid format specified."
        );
        let cases: &[(&[&str], Option<Format>)] = &[
            (&[], None),
            (&["--format=no"], Some(Format::No)),
            (&["--format", "raw"], Some(Format::Raw)),
            (&["--format:ascii"], Some(Format::Ascii)),
            (&["--format=quoted"], Some(Format::Quoted)),
            (&["--format=msgpack"], Some(Format::Msgpack)),
            (&["--format=hex"], Some(Format::Hex)),
            (&["--raw"], Some(Format::Raw)),
            (&["-A"], Some(Format::Ascii)),
            (&["--ascii"], Some(Format::Ascii)),
            (&["-Q"], Some(Format::Quoted)),
            (&["--quoted"], Some(Format::Quoted)),
            (&["--msgpack"], Some(Format::Msgpack)),
            (&["--hex"], Some(Format::Hex)),
        ];
        for (extra, want) in cases {
            let mut args = vec!["--pull", D];
            args.extend_from_slice(extra);
            assert_eq!(run(&args).format, *want, "{extra:?}");
        }
    }

    // ---- option syntax and values ----

    #[test]
    fn option_value_syntaxes() {
        for args in [
            &["--pull", "--dial=tcp://h:1"][..],
            &["--pull", "--dial:tcp://h:1"],
            &["--pull", "--dial", "tcp://h:1"],
            &["--pull", "--connect", "tcp://h:1"],
            &["--pull", "--di:tcp://h:1"],
        ] {
            assert_eq!(
                run(args).endpoints,
                [Endpoint::Dial("tcp://h:1".into())],
                "{args:?}"
            );
        }
        assert_eq!(
            run(&["--pull", "-L5555"]).endpoints,
            [Endpoint::Listen("tcp://127.0.0.1:5555".into())]
        );
        assert_eq!(
            run(&["--pull", "-L", "5555"]).endpoints,
            [Endpoint::Listen("tcp://127.0.0.1:5555".into())]
        );
        assert_eq!(
            run(&["--pull", "-l", "80"]).endpoints,
            [Endpoint::Dial("tcp://127.0.0.1:80".into())]
        );
        assert_eq!(
            run(&["--pull", "--connect-local=7"]).endpoints,
            [Endpoint::Dial("tcp://127.0.0.1:7".into())]
        );
        assert!(err(&["--pull", "-L", "65537"]).contains("too large"));
        assert!(err(&["--pull", "-L", "http"]).contains("Integer argument expected"));
    }

    #[test]
    fn data_values_may_look_like_options() {
        assert_eq!(
            run(&["--push", D, "-D", "--re"]).source,
            Some(Source::Data(b"--re".to_vec()))
        );
        assert_eq!(
            run(&["--push", D, "--data", "-x"]).source,
            Some(Source::Data(b"-x".to_vec()))
        );
        assert_eq!(
            run(&["--push", D, "--data=a=b:c"]).source,
            Some(Source::Data(b"a=b:c".to_vec()))
        );
        assert_eq!(
            run(&["--push", D, "--data="]).source,
            Some(Source::Data(Vec::new()))
        );
        assert_eq!(
            run(&["--push", D, "-D", ""]).source,
            Some(Source::Data(Vec::new()))
        );
    }

    #[test]
    fn ipc_shortcuts_are_absolute() {
        assert_eq!(
            run(&["--pull", "-X", "tmp/sock"]).endpoints,
            [Endpoint::Listen("ipc:///tmp/sock".into())]
        );
        assert_eq!(
            run(&["--pull", "-X", "/tmp/sock"]).endpoints,
            [Endpoint::Listen("ipc:///tmp/sock".into())]
        );
        assert_eq!(
            run(&["--pull", "-x//tmp/sock"]).endpoints,
            [Endpoint::Dial("ipc:///tmp/sock".into())]
        );
        assert_eq!(
            run(&["--pull", "--bind-ipc=a"]).endpoints,
            [Endpoint::Listen("ipc:///a".into())]
        );
    }

    #[test]
    fn endpoints_keep_command_line_order() {
        let c = run(&[
            "--pull",
            "--dial",
            "tcp://a:1",
            "-X",
            "s",
            "--listen",
            "inproc://b",
            "-l",
            "2",
            "--bind=tcp://c:3",
        ]);
        assert_eq!(
            c.endpoints,
            [
                Endpoint::Dial("tcp://a:1".into()),
                Endpoint::Listen("ipc:///s".into()),
                Endpoint::Listen("inproc://b".into()),
                Endpoint::Dial("tcp://127.0.0.1:2".into()),
                Endpoint::Listen("tcp://c:3".into()),
            ]
        );
    }

    #[test]
    fn no_address_is_an_error() {
        assert_eq!(err(&["--pull"]), "No address specified.");
        assert_eq!(err(&["--req", "-D", "x"]), "No address specified.");
        // nngcat reports the missing address before the missing protocol.
        assert_eq!(err(&[]), "No address specified.");
    }

    #[test]
    fn parsing_stops_at_first_non_option() {
        let c = run(&["--pull", D, "extra", "--bogus", "--push"]);
        assert_eq!(c.protocol, Protocol::Pull0);
        assert_eq!(err(&["--pull", "extra", D]), "No address specified.");
    }

    #[test]
    fn numbers_and_timeouts() {
        let c = run(&[
            "--req",
            D,
            "-D",
            "x",
            "-d",
            "2",
            "-i3",
            "--recv-timeout=4",
            "--send-timeout",
            "5",
            "-C",
            "6",
            "-Z",
            "7",
        ]);
        assert_eq!(c.delay, Duration::from_secs(2));
        assert_eq!(c.interval, Some(Duration::from_secs(3)));
        assert_eq!(c.recv_timeout, Some(Duration::from_secs(4)));
        assert_eq!(c.send_timeout, Some(Duration::from_secs(5)));
        assert_eq!(c.count, 6);
        assert_eq!(c.recv_maxsz, Some(7));
        let c = run(&["--pull", D]);
        assert_eq!(
            (c.delay, c.interval, c.recv_timeout, c.send_timeout),
            (Duration::ZERO, None, None, None)
        );
        assert_eq!((c.count, c.recv_maxsz), (0, None));
        // Zero timeouts mean "forever"; zero max size means 2^31-1.
        let c = run(&[
            "--pull",
            D,
            "--recv-timeout",
            "0",
            "--send-timeout=0",
            "--recv-maxsz=0",
        ]);
        assert_eq!(
            (c.recv_timeout, c.send_timeout, c.recv_maxsz),
            (None, None, Some(0x7fff_ffff))
        );
        assert!(err(&["--pull", D, "--recv-timeout", "86401"]).contains("too large"));
        assert_eq!(
            run(&["--pull", D, "--recv-timeout", "86400"]).recv_timeout,
            Some(Duration::from_secs(86400))
        );
        assert!(err(&["--pull", D, "-d", "1s"]).contains("Integer argument expected"));
        // The last occurrence wins.
        assert_eq!(run(&["--pull", D, "-C", "1", "-C", "2"]).count, 2);
    }

    #[test]
    fn runtime_option() {
        assert_eq!(run(&["--pull", D]).runtime, RuntimeKind::Tokio);
        assert_eq!(
            run(&["--pull", D, "--runtime", "smol"]).runtime,
            RuntimeKind::Smol
        );
        assert_eq!(
            run(&["--pull", D, "--run=tokio"]).runtime,
            RuntimeKind::Tokio
        );
        assert_eq!(
            run(&["--pull", D, "--runtime", "blocking"]).runtime,
            RuntimeKind::Blocking
        );
        assert_eq!(
            err(&["--pull", D, "--runtime", "glommio"]),
            "unknown runtime glommio (expected tokio, smol or blocking)"
        );
    }

    #[test]
    fn verbosity_and_misc() {
        assert_eq!(run(&["--pull", D]).verbose, 0);
        assert_eq!(run(&["--pull", D, "-v"]).verbose, 1);
        assert_eq!(run(&["--pull", D, "-v", "-v", "--verb"]).verbose, 3);
        assert_eq!(run(&["--pull", D, "-v", "-q"]).verbose, 0);
        assert_eq!(run(&["--pull", D, "-q", "-v"]).verbose, 1);
        assert_eq!(run(&["--pull", D, "--silent"]).verbose, 0);
        let c = run(&[
            "--pull",
            D,
            "--socket-name",
            "foo",
            "--zt-home",
            "/z",
            "--async",
        ]);
        assert_eq!(c.socket_name, Some("foo".into()));
        assert!(c.async_dial && !c.compat);
    }

    #[test]
    fn subscriptions() {
        assert_eq!(run(&["--sub", D]).subscriptions, [Vec::<u8>::new()]);
        assert_eq!(
            run(&["--sub0", D, "--subscribe=one", "--subscribe", "two"]).subscriptions,
            [b"one".to_vec(), b"two".to_vec()]
        );
    }

    #[test]
    fn tls_options() {
        assert_eq!(run(&["--pull", D]).tls, TlsOptions::default());
        let cfg = run(&["--pull", D, "-k", "--cacert", "/ca", "-E", "/c", "--key=/k"]);
        assert_eq!(
            cfg.tls,
            TlsOptions {
                insecure: true,
                cacert: Some("/ca".into()),
                cert: Some("/c".into()),
                key: Some("/k".into()),
            }
        );
        assert_eq!(run(&["--pull", D, "--cert=/c"]).tls.cert, Some("/c".into()));
        assert!(err(&["--pull", D, "--key", "/k"]).contains("requires --cert"));
        assert!(err(&["--pull", D, "--cacert", "/a", "--cacert", "/b"]).contains("only once"));
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse_v(&["--help"]), Ok(Parsed::Help));
        assert_eq!(parse_v(&["-h"]), Ok(Parsed::Help));
        assert_eq!(parse_v(&["--hel"]), Ok(Parsed::Help));
        assert!(err(&["--he"]).contains("ambiguous"), "help or hex");
        assert_eq!(parse_v(&["-V"]), Ok(Parsed::Version));
        assert_eq!(parse_v(&["--version"]), Ok(Parsed::Version));
        assert_eq!(parse_v(&["--pull", "--vers"]), Ok(Parsed::Version));
        assert!(usage().starts_with("Usage: spcat"));
    }

    #[test]
    fn int_arg_rules() {
        assert_eq!(int_arg("0", 5), Ok(0));
        assert_eq!(int_arg("5", 5), Ok(5));
        assert_eq!(int_arg("007", 10), Ok(7));
        assert!(int_arg("6", 5).is_err());
        assert!(int_arg("+1", 5).is_err());
        assert!(int_arg(" 1", 5).is_err());
        assert!(int_arg("99999999999999999999999", u64::from(u32::MAX)).is_err());
    }

    #[test]
    fn normalize_rewrites_to_canonical_tokens() {
        let argv: Vec<OsString> = [
            "spcat",
            "--re=x",
            "--pul",
            "-Lx",
            "-F",
            "-",
            "--dial:a:b",
            "rest",
            "--zzz",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        // --re is ambiguous.
        assert!(normalize(&argv).unwrap_err().0.contains("ambiguous"));
        let argv: Vec<OsString> = [
            "spcat",
            "--pul",
            "-Lx",
            "-F",
            "-",
            "--dial:a:b",
            "rest",
            "--zzz",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let out: Vec<String> = normalize(&argv)
            .unwrap()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        assert_eq!(
            out,
            [
                "spcat",
                "--pull0",
                "--bind-local=x",
                "--file=-",
                "--dial=a:b"
            ]
        );
    }
}
