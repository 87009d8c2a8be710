//! Engine-level behaviour tests (PHYSICS.md §9).
