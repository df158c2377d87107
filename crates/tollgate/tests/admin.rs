//! The operator's commands against the real binary, on SQLite and (with
//! `TOLLGATE_TEST_POSTGRES_URL`) PostgreSQL: `tollgate migrate`, `tollgate admin
//! create-user` and `tollgate admin make-operator`. See `harness/mod.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use harness::{databases, text};
use tollgate_store::Store;

const OPERATOR_PASSWORD: &str = "Kestrel-harbor-73";
const ENV_PASSWORD: &str = "Quartz-meadow-58";

#[test]
fn migrate_applies_every_migration_once() {
    for db in databases("migrate") {
        let out = db.run(&["migrate"], &[]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{}: {stderr}", db.name);
        let all = format!("applied {} migration(s); the database is up to date", Store::EMBEDDED_MIGRATIONS);
        assert!(stdout.contains(&all), "{}: {stdout}", db.name);
        let again = db.run(&["migrate"], &[]);
        assert!(text(&again).0.contains("applied 0 migration(s)"), "{}: {:?}", db.name, text(&again));
        assert!(!db.dir.join("encryption.key").exists(), "migrating needs no encryption key");
    }
}

#[test]
fn admin_creates_users_and_operators() {
    for db in databases("admin_users") {
        // --password and --operator.
        let out = db.run(
            &["admin", "create-user", "--email", "Op@Example.com", "--name", "Op", "--password", OPERATOR_PASSWORD],
            &[],
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{}: {stderr}", db.name);
        assert!(stdout.starts_with("created user op@example.com (usr_"), "{stdout}");
        assert!(!stdout.contains("operator"), "{stdout}");
        let out = db.run(
            &["admin", "create-user", "--email", "root@example.com", "--name", "Root", "--operator"],
            &[("TOLLGATE_ADMIN_PASSWORD", OPERATOR_PASSWORD)],
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{}: {stderr}", db.name);
        assert!(stdout.contains("created user root@example.com") && stdout.ends_with(", operator\n"), "{stdout}");

        // The password from TOLLGATE_ADMIN_PASSWORD, which is not an unknown variable.
        let out = db.run(
            &["admin", "create-user", "--email", "dev@example.com", "--name", "Dev"],
            &[("TOLLGATE_ADMIN_PASSWORD", ENV_PASSWORD)],
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{}: {stderr}", db.name);
        assert!(stdout.contains("created user dev@example.com"), "{stdout}");
        assert!(!stderr.contains("unknown environment variable"), "{stderr}");

        // Refusals: no password, a weak one, an email already taken, an unknown user.
        let none = db.run(&["admin", "create-user", "--email", "x@example.com", "--name", "X"], &[]);
        assert!(!none.status.success());
        assert!(text(&none).1.contains("give --password or set TOLLGATE_ADMIN_PASSWORD"), "{:?}", text(&none));
        let weak =
            db.run(&["admin", "create-user", "--email", "x@example.com", "--name", "X", "--password", "short"], &[]);
        assert!(!weak.status.success());
        assert!(text(&weak).1.contains("password"), "{:?}", text(&weak));
        let taken = db.run(
            &["admin", "create-user", "--email", "dev@example.com", "--name", "Again", "--password", ENV_PASSWORD],
            &[],
        );
        assert!(!taken.status.success());
        assert!(text(&taken).1.contains("already exists"), "{:?}", text(&taken));
        let unknown = db.run(&["admin", "make-operator", "--email", "nobody@example.com"], &[]);
        assert!(!unknown.status.success());
        assert!(text(&unknown).1.contains("no user has this email"), "{:?}", text(&unknown));

        // make-operator (the email in any case).
        let out = db.run(&["admin", "make-operator", "--email", "OP@example.com"], &[]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{}: {stderr}", db.name);
        assert_eq!(stdout, "op@example.com is now an operator\n");
        assert!(!db.dir.join("encryption.key").exists(), "these commands need no encryption key");

        // What the server says about them: each logs in with its password.
        let server = db.serve(&[]);
        for (email, password, operator) in [
            ("op@example.com", OPERATOR_PASSWORD, true),
            ("root@example.com", OPERATOR_PASSWORD, true),
            ("dev@example.com", ENV_PASSWORD, false),
        ] {
            let (cookie, session) = server.log_in(email, password);
            assert_eq!(session["user"]["is_operator"], operator, "{}: {email}: {session}", db.name);
            let r = server.http("GET", "/api/v1/billing/balance", &[("Cookie", &cookie)], "");
            assert_eq!(r.json()["balance"], "100.000000", "the signup grant: {}", r.body);
        }
        server.stop();
    }
}
