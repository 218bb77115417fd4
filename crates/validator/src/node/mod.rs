pub mod decide;
pub mod forks;
