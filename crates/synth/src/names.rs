//! Chinese personal names: common surnames with their approximate frequencies, and
//! given-name characters. Synthetic names only; any likeness is chance.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Common surnames with weights (per-mille of the population, rounded) [K].
const SURNAMES: [(&str, u32); 40] = [
    ("王", 72),
    ("李", 72),
    ("张", 69),
    ("刘", 53),
    ("陈", 53),
    ("杨", 32),
    ("黄", 23),
    ("赵", 20),
    ("吴", 20),
    ("周", 19),
    ("徐", 17),
    ("孙", 15),
    ("马", 15),
    ("朱", 14),
    ("胡", 13),
    ("郭", 12),
    ("何", 12),
    ("高", 11),
    ("林", 11),
    ("罗", 10),
    ("郑", 10),
    ("梁", 9),
    ("谢", 8),
    ("宋", 7),
    ("唐", 7),
    ("许", 7),
    ("韩", 7),
    ("冯", 7),
    ("邓", 7),
    ("曹", 6),
    ("彭", 6),
    ("曾", 6),
    ("沈", 6),
    ("顾", 5),
    ("陆", 5),
    ("蒋", 5),
    ("蔡", 5),
    ("钱", 4),
    ("金", 4),
    ("姚", 4),
];

const GIVEN_MALE: [&str; 40] = [
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
    "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "建", "国", "文", "志", "海", "峰", "荣", "林",
    "晨", "博", "子", "轩", "昊", "然", "嘉", "铭",
];

const GIVEN_FEMALE: [&str; 40] = [
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "英", "华", "慧", "巧", "美", "玲", "萍",
    "红", "燕", "婷", "雪", "琳", "洁", "梅", "莉", "兰", "凤", "珍", "晶", "颖", "倩", "怡", "欣",
    "悦", "涵", "佳", "雨", "诗", "梦", "思", "琪",
];

/// A random name: surname plus one or two given characters.
pub(crate) fn person_name(rng: &mut ChaCha8Rng, male: bool) -> String {
    let total: u32 = SURNAMES.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    let mut surname = SURNAMES[0].0;
    for (s, w) in SURNAMES {
        if pick < w {
            surname = s;
            break;
        }
        pick -= w;
    }
    let pool = if male { &GIVEN_MALE } else { &GIVEN_FEMALE };
    let mut name = String::with_capacity(9);
    name.push_str(surname);
    name.push_str(pool[rng.random_range(0..pool.len())]);
    if rng.random_bool(0.7) {
        name.push_str(pool[rng.random_range(0..pool.len())]);
    }
    name
}

/// A mobile number: 1, a carrier digit, nine digits.
pub(crate) fn phone(rng: &mut ChaCha8Rng) -> String {
    const CARRIER: [char; 4] = ['3', '5', '8', '7'];
    format!(
        "1{}{:09}",
        CARRIER[rng.random_range(0..CARRIER.len())],
        rng.random_range(0..1_000_000_000u32)
    )
}
