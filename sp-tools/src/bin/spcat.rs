//! `spcat`: a drop-in for NNG's `nngcat`. See `sp_tools::spcat`.

fn main() {
    std::process::exit(sp_tools::spcat::main());
}
