//! SQL. Every function takes the connection of a tenant transaction and the vendor id, and
//! filters by it (the first wall; RLS is the second).

pub(crate) mod contacts;
pub(crate) mod imports;
pub(crate) mod lists;
