//! `sp-bench-chart`: draws the results of `scripts/bench-vs.sh` as an SVG bar chart. See
//! `sp_tools::benchchart`.

fn main() {
    std::process::exit(sp_tools::benchchart::main());
}
