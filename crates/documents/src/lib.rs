//! Generated PDF documents.
