//! Persistent state of the embedded issuer behind one trait: SQLite and PostgreSQL.
