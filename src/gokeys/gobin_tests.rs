#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]
use super::*;

#[test]
fn explore() {
    for p in ["cg/cp126", "cg/cps126"] {
        let data = std::fs::read(format!("/tmp/gbx/{p}")).unwrap();
        let elf = Elf::parse(&data, &[RUNTIME_TEXT]).unwrap();
        let s = elf.pclntab_section().unwrap();
        let pc = Pclntab::parse(elf.section_data(s).unwrap()).unwrap();
        eprintln!("{p}: rt {:x?} header {:x} md {:x?} text {:x?} find {:x?}", elf.symbol(RUNTIME_TEXT).map(|s| s.value), pc.header_text, moduledata_text(&elf, &pc, s.addr), elf.section(".text").map(|s| s.addr), find_in_pclntab(&data, WRITE_KEY_LOG).map(|m| (m.vaddr, m.text_start)));
    }
}
