//! TODO module docs
