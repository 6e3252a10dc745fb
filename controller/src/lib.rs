//! The controller (work in progress).
