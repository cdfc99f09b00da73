//! Benchmarks of Cachet that print their figures. The suite (`cargo bench -p cachet-bench`)
//! runs them all; `--bin dashboard` runs the back office's alone.

pub mod dashboard;
pub mod measure;
