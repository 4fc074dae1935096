//! `sp-perf`: NNG's perf tests (local_lat, remote_lat, local_thr, remote_thr, inproc_thr,
//! inproc_lat) plus raw-TCP baselines. See `sp_tools::perf`.

fn main() {
    std::process::exit(sp_tools::perf::main());
}
