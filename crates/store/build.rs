// `sqlx::migrate!` embeds the migration files at compile time; rebuild when one is added or
// changed (as sqlx's documentation advises), or a new migration would be missing from the binary.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
