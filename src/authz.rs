//! Authorization: NIST RBAC (core + hierarchical) policies per route and method; deny by default.
