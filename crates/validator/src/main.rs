//! `towerlock-validator`: (being written)

fn main() {}
