//! The training lessons: the five classic mistakes that make private module proxies
//! dangerous, each as two lab scenarios run side by side, the unsafe setting and the safe one.
//! `modtrace lab list` and `lab run` read them; `modtrace demo` replays their recordings
//! (captures/training/LESSON.HALF.pcapng, made by `modtrace lab run LESSON --record`).
//! The stories live here; what each finding means and how to fix it lives in
//! [`crate::detect::rules::RULES`] (shared with `explain` and the SARIF help).
//!
//! Data only, apart from the lab's servers: the TUI's demo reads it without the lab, and the
//! lab resolves each half's scenario name (`lab::scenario::of_half`).

/// Which side of a lesson.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HalfKind {
    Unsafe,
    Safe,
}

impl HalfKind {
    pub const BOTH: [HalfKind; 2] = [HalfKind::Unsafe, HalfKind::Safe];

    pub fn as_str(self) -> &'static str {
        match self {
            HalfKind::Unsafe => "unsafe",
            HalfKind::Safe => "safe",
        }
    }

    pub fn parse(s: &str) -> Option<HalfKind> {
        HalfKind::BOTH.into_iter().find(|h| h.as_str() == s)
    }
}

/// One side of a lesson: a lab scenario and what a trainer says about it.
#[derive(Clone, Copy, Debug)]
pub struct Half {
    pub kind: HalfKind,
    /// The lab scenario run for it (`lab::scenario::find`).
    pub scenario: &'static str,
    /// The setting that makes the difference, as the trainee would type or configure it.
    pub setting: &'static str,
    /// What happens, in one or two sentences.
    pub outcome: &'static str,
}

#[derive(Clone, Copy, Debug)]
pub struct Lesson {
    /// 1 to 5, the order to teach them in.
    pub number: u8,
    /// What `lab run` and `demo` take.
    pub name: &'static str,
    pub title: &'static str,
    /// The story: what the mistake is and what an attacker gets from it.
    pub story: &'static str,
    /// What to point at in the TUI.
    pub show: &'static str,
    pub unsafe_half: Half,
    pub safe_half: Half,
}

impl Lesson {
    pub fn half(&self, kind: HalfKind) -> &Half {
        match kind {
            HalfKind::Unsafe => &self.unsafe_half,
            HalfKind::Safe => &self.safe_half,
        }
    }

    /// The recording of one half, relative to the captures folder.
    pub fn capture_path(&self, kind: HalfKind) -> String {
        format!("{TRAINING_DIR}/{}.{}.pcapng", self.name, kind.as_str())
    }
}

/// Where the lesson recordings live under captures/.
pub const TRAINING_DIR: &str = "training";

/// The policy every lesson is analysed with: the lab's private module path, and the lab's
/// private proxies (the only ones that may see it).
pub const LAB_POLICY: &str = "\
# The lab's policy for the training lessons (modtrace lab run, modtrace demo).
# corp.lab.test/... is the company's private code: only its own proxies may see the paths.
private = [\"corp.lab.test\"]
private_proxies = [\"http://127.0.0.1:8114\", \"http://127.0.0.1:8116\"]
";

/// File names, under captures/training, of what every lesson is analysed with besides the
/// lab CA (captures/lab-pki/lab-ca.pem) and the lab checksum database's key.
pub const LAB_POLICY_FILE: &str = "lab.policy.toml";
pub const LAB_GO_SUM_FILE: &str = "lab.go.sum";

/// The modules of the lessons, for the go.sum a team would have committed.
pub const LESSON_MODULES: &[&str] = &[
    "corp.lab.test/Billing@v1.0.0",
    "example.test/Hello@v1.1.0",
    "example.test/Util@v0.2.0",
];

pub const LESSONS: &[Lesson] = &[
    Lesson {
        number: 1,
        name: "sumdb-off",
        title: "Checksum database switched off, with a tampering proxy",
        story: "GOSUMDB=off is a common answer to \"verifying module: ... 404\" for private code. With it, nothing checks that a zip is the one everyone else got: a proxy that changes one byte in every zip goes unnoticed. With the checksum database on, the go command refuses the same zips with SECURITY ERROR.",
        show: "Unsafe: go exits 0 and nothing warned; modtrace's checksum-mismatch names the proxy and gives both hashes (go.sum's and the zip's). Safe: the lookup in the checksum database, then go's refusal; the same finding, now from the database's own record.",
        unsafe_half: Half {
            kind: HalfKind::Unsafe,
            scenario: "tamper-sumdb-off",
            setting: "GOSUMDB=off",
            outcome: "go accepts the tampered zips and exits 0",
        },
        safe_half: Half {
            kind: HalfKind::Safe,
            scenario: "tamper-sumdb-on",
            setting: "GOSUMDB=<the checksum database's key and URL>",
            outcome: "go refuses both zips: SECURITY ERROR, checksum mismatch",
        },
    },
    Lesson {
        number: 2,
        name: "mitm-legs",
        title: "A plaintext proxy, and a mirror that does not verify its upstream",
        story: "The go command talks to the company mirror over plain HTTP, and the mirror fetches from its upstream over HTTPS without checking the certificate (InsecureSkipVerify, verify=false). A man in the middle on either leg can read and replace every module.",
        show: "Unsafe: plaintext-module-fetch on the go command's leg, unverified-tls on the mirror's leg (a self-signed certificate the mirror accepted). Safe: HTTPS on both legs with certificates that verify: the journey still shows both hops, with nothing to report.",
        unsafe_half: Half {
            kind: HalfKind::Unsafe,
            scenario: "tls-mirror-selfsigned",
            setting: "GOPROXY=http://mirror; the mirror skips certificate verification upstream",
            outcome: "go succeeds; either leg could have been rewritten",
        },
        safe_half: Half {
            kind: HalfKind::Safe,
            scenario: "mirror-tls-verified",
            setting: "GOPROXY=https://mirror; the mirror verifies its upstream's certificate",
            outcome: "go succeeds over HTTPS on both legs, every certificate verified",
        },
    },
    Lesson {
        number: 3,
        name: "proxy-order",
        title: "A public-style mirror listed before the private one, GOPRIVATE unset",
        story: "GOPROXY lists a public-style mirror first and the company's private proxy second, and GOPRIVATE is unset. The go command asks the public mirror for the private module first: the private path leaks to it, and whoever can publish there could serve a look-alike module that the go command would take.",
        show: "Unsafe: private-module-leak for corp.lab.test/Billing at the public mirror, and its journey: 404 at the public mirror, then the fallback to the private proxy. Safe: the private proxy first, GOPRIVATE and GONOPROXY=none: the private path only ever reaches the private proxy.",
        unsafe_half: Half {
            kind: HalfKind::Unsafe,
            scenario: "proxy-order-unsafe",
            setting: "GOPROXY=http://public,http://private; GOPRIVATE unset",
            outcome: "go succeeds, after asking the public mirror for the private module",
        },
        safe_half: Half {
            kind: HalfKind::Safe,
            scenario: "proxy-order-safe",
            setting: "GOPROXY=http://private,http://public; GOPRIVATE=corp.lab.test; GONOPROXY=none",
            outcome: "go succeeds; the private path goes to the private proxy only",
        },
    },
    Lesson {
        number: 4,
        name: "redirect-loop",
        title: "Fallback and redirect loops between two mirrors",
        story: "Two mirrors each redirect what they do not have to the other. The go command follows the redirects until it gives up after 10, and every hop repeats the module path on the wire.",
        show: "Unsafe: redirect-loop and redirect-limit, and the journey drawing the loop a -> b -> a -> ...; go's own \"stopped after 10 redirects\". Safe: one redirect to the mirror that has the module.",
        unsafe_half: Half {
            kind: HalfKind::Unsafe,
            scenario: "redirect-loop",
            setting: "mirror a redirects to mirror b, which redirects back to a",
            outcome: "go stops after 10 redirects and fails",
        },
        safe_half: Half {
            kind: HalfKind::Safe,
            scenario: "redirect-once",
            setting: "mirror a redirects once, to the proxy that serves the module",
            outcome: "go follows one redirect and succeeds",
        },
    },
    Lesson {
        number: 5,
        name: "creds-on-wire",
        title: "A mirror that authenticates to its upstream over plain HTTP",
        story: "The company mirror logs in to its upstream with Basic auth, over plain HTTP. Anyone on that leg reads the credential and can use it: to read every private module, or to publish to the upstream.",
        show: "Unsafe: credentials-in-plaintext on the mirror's leg; modtrace names the scheme and the user, never the secret (press Enter on the finding). Safe: the same login over verified HTTPS: nothing on the wire to read.",
        unsafe_half: Half {
            kind: HalfKind::Unsafe,
            scenario: "mirror-basic-auth",
            setting: "the mirror's upstream is http:// with Basic auth",
            outcome: "go succeeds; the mirror's password crossed the wire in clear",
        },
        safe_half: Half {
            kind: HalfKind::Safe,
            scenario: "mirror-tls-verified",
            setting: "the mirror's upstream is https:// (verified) with Basic auth",
            outcome: "go succeeds; the credential only travels inside verified TLS",
        },
    },
];

/// The lesson named `name` (or numbered: "1".."5").
pub fn find(name: &str) -> Option<&'static Lesson> {
    LESSONS
        .iter()
        .find(|l| l.name == name || l.number.to_string() == name)
}

/// The verifier key of the lab's checksum database (`lab::LabSigner::lab`, from a fixed
/// seed; a lab test checks that they agree).
pub const LAB_SUMDB_KEY: &str =
    "sum.lab.test+557e3365+ASaucAHYJPFswIjDrLhWVXY0unOfZq46KqAOEK9kp/ZZ";

/// The analysis flags a lesson half is read with, given the captures folder: the lab CA, the
/// lab checksum database's key, the go.sum a team would have committed, the lab policy. The
/// same for every half, so the halves differ only by what happened on the wire.
pub fn analysis_args(captures_dir: &std::path::Path) -> Vec<String> {
    let d = captures_dir;
    let p = |rel: &str| d.join(rel).display().to_string();
    vec![
        "--ca-file".into(),
        p("lab-pki/lab-ca.pem"),
        "--sumdb-key".into(),
        LAB_SUMDB_KEY.into(),
        "--go-sum".into(),
        p(&format!("{TRAINING_DIR}/{LAB_GO_SUM_FILE}")),
        "--policy".into(),
        p(&format!("{TRAINING_DIR}/{LAB_POLICY_FILE}")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lessons_are_numbered_in_order() {
        for (i, l) in LESSONS.iter().enumerate() {
            assert_eq!(l.number as usize, i + 1);
            assert_eq!(find(l.name).unwrap().name, l.name);
            assert_eq!(find(&l.number.to_string()).unwrap().name, l.name);
            for k in HalfKind::BOTH {
                assert_eq!(l.half(k).kind, k);
            }
            assert_ne!(l.unsafe_half.scenario, l.safe_half.scenario);
        }
        assert!(find("nope").is_none());
        assert_eq!(
            LESSONS[0].capture_path(HalfKind::Safe),
            "training/sumdb-off.safe.pcapng"
        );
    }
}
