//! The `spcat_args` check (spcat's nngcat-style command line, `sp_tools::spcat::args`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use sp_tools::spcat::args::{normalize, parse, OPTIONS};

/// Splits the input at NUL bytes into an argument vector (after the program name `spcat`;
/// arguments may hold any other bytes, as on Unix) and runs it through the normaliser and the
/// parser.
///
/// Checked: no panic; the normaliser keeps the program name, turns every option it keeps into
/// one canonical token (`--long` for a flag, `--long=value` for an option with a value, `long`
/// a name in spcat's option table), never adds arguments, and is idempotent (so parsing the
/// normalised vector gives what parsing the original gives); `parse` fails exactly as the
/// normaliser does; every error has a message.
pub fn spcat_args(data: &[u8]) {
    let mut argv = vec![OsString::from("spcat")];
    if !data.is_empty() {
        argv.extend(
            data.split(|&b| b == 0)
                .map(|arg| OsStr::from_bytes(arg).to_os_string()),
        );
    }
    let normalized = normalize(&argv);
    let parsed = parse(argv.iter().cloned());
    match &normalized {
        Ok(tokens) => {
            assert_eq!(tokens.first(), argv.first(), "the program name changed");
            assert!(tokens.len() <= argv.len(), "the normaliser added arguments");
            for token in &tokens[1..] {
                let canonical = token.as_bytes().strip_prefix(b"--").and_then(|option| {
                    let (name, value) = match option.iter().position(|&b| b == b'=') {
                        Some(i) => (&option[..i], Some(&option[i + 1..])),
                        None => (option, None),
                    };
                    let spec = OPTIONS.iter().find(|spec| spec.long.as_bytes() == name)?;
                    Some(spec.takes_value == value.is_some())
                });
                assert_eq!(
                    canonical,
                    Some(true),
                    "{token:?} is not a canonical option of spcat's table"
                );
            }
            // `parse` normalises first, so with this, parsing the normalised vector gives
            // what parsing the original gives (checking it again would cost a second clap
            // parse per input).
            assert_eq!(
                normalize(tokens).as_ref(),
                Ok(tokens),
                "normalising twice changes the arguments"
            );
        }
        Err(err) => {
            assert!(!err.0.is_empty(), "a normaliser error without a message");
            assert_eq!(
                parsed.as_ref(),
                Err(err),
                "parse reports another error than normalize"
            );
        }
    }
    if let Err(err) = &parsed {
        assert!(!err.0.is_empty(), "a parse error without a message");
    }
}
