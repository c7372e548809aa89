//! The fixed word lists the catalog is built from: categories, subcategories,
//! nouns, adjectives and brands. Titles are drawn from these with seeded RNGs,
//! so the same seed always names the same items.

/// A subcategory: its path segment and the nouns its items are called by.
pub(crate) struct Subcategory {
    pub name: &'static str,
    pub nouns: &'static [&'static str],
}

/// A top-level category with its typical (median) price.
pub(crate) struct TopCategory {
    pub name: &'static str,
    pub median_price: f64,
    pub subcategories: &'static [Subcategory],
}

macro_rules! sub {
    ($name:literal: $($noun:literal),+) => {
        Subcategory { name: $name, nouns: &[$($noun),+] }
    };
}

/// The shop's departments, in the order they are used.
pub(crate) const TOP_CATEGORIES: &[TopCategory] = &[
    TopCategory {
        name: "electronics",
        median_price: 120.0,
        subcategories: &[
            sub!("audio": "Headphones", "Speaker", "Earbuds", "Soundbar"),
            sub!("phones": "Phone Case", "Charger", "Power Bank", "Screen Protector"),
            sub!("computers": "Keyboard", "Mouse", "Monitor", "Laptop Stand"),
        ],
    },
    TopCategory {
        name: "books",
        median_price: 15.0,
        subcategories: &[
            sub!("scifi": "Space Opera", "Cyberpunk Novel", "Time Travel Saga"),
            sub!("cooking": "Cookbook", "Baking Guide", "Spice Atlas"),
            sub!("history": "Biography", "War Chronicle", "Ancient History"),
            sub!("kids": "Picture Book", "Bedtime Stories", "Activity Book"),
        ],
    },
    TopCategory {
        name: "home",
        median_price: 45.0,
        subcategories: &[
            sub!("kitchen": "Knife Set", "Frying Pan", "Kettle", "Cutting Board"),
            sub!("decor": "Vase", "Wall Clock", "Cushion", "Lamp"),
            sub!("bath": "Towel Set", "Bath Mat", "Shower Caddy"),
        ],
    },
    TopCategory {
        name: "fashion",
        median_price: 40.0,
        subcategories: &[
            sub!("shoes": "Sneakers", "Boots", "Sandals", "Loafers"),
            sub!("tops": "T-Shirt", "Hoodie", "Sweater", "Blouse"),
            sub!("accessories": "Scarf", "Belt", "Wallet", "Sunglasses"),
        ],
    },
    TopCategory {
        name: "sports",
        median_price: 35.0,
        subcategories: &[
            sub!("running": "Running Shoes", "Water Bottle", "Armband"),
            sub!("yoga": "Yoga Mat", "Yoga Block", "Resistance Band"),
            sub!("cycling": "Bike Light", "Helmet", "Cycling Gloves"),
        ],
    },
    TopCategory {
        name: "beauty",
        median_price: 20.0,
        subcategories: &[
            sub!("skincare": "Face Cream", "Serum", "Cleanser"),
            sub!("makeup": "Lipstick", "Mascara", "Palette"),
            sub!("fragrance": "Eau de Parfum", "Body Mist", "Cologne"),
        ],
    },
    TopCategory {
        name: "toys",
        median_price: 25.0,
        subcategories: &[
            sub!("puzzles": "Jigsaw Puzzle", "Puzzle Cube", "Brain Teaser"),
            sub!("building": "Building Set", "Marble Run", "Construction Kit"),
            sub!("games": "Board Game", "Card Game", "Dice Set"),
        ],
    },
    TopCategory {
        name: "grocery",
        median_price: 8.0,
        subcategories: &[
            sub!("coffee": "Coffee Beans", "Ground Coffee", "Espresso Pods"),
            sub!("snacks": "Granola", "Trail Mix", "Dark Chocolate"),
            sub!("tea": "Green Tea", "Herbal Tea", "Black Tea"),
        ],
    },
    TopCategory {
        name: "garden",
        median_price: 30.0,
        subcategories: &[
            sub!("tools": "Pruner", "Trowel", "Watering Can"),
            sub!("plants": "Seed Kit", "Planter", "Bonsai"),
            sub!("outdoor": "Hammock", "String Lights", "Bird Feeder"),
        ],
    },
    TopCategory {
        name: "music",
        median_price: 60.0,
        subcategories: &[
            sub!("instruments": "Ukulele", "Harmonica", "Keyboard Stand"),
            sub!("vinyl": "Jazz Record", "Rock Record", "Soundtrack LP"),
            sub!("gear": "Guitar Strings", "Tuner", "Capo"),
        ],
    },
    TopCategory {
        name: "pets",
        median_price: 18.0,
        subcategories: &[
            sub!("dogs": "Dog Leash", "Chew Toy", "Dog Bed"),
            sub!("cats": "Scratching Post", "Cat Toy", "Litter Mat"),
            sub!("fish": "Aquarium Filter", "Fish Food", "Tank Light"),
        ],
    },
    TopCategory {
        name: "office",
        median_price: 12.0,
        subcategories: &[
            sub!("paper": "Notebook", "Planner", "Sticky Notes"),
            sub!("writing": "Fountain Pen", "Gel Pens", "Highlighters"),
            sub!("desk": "Desk Organizer", "Desk Mat", "Bookends"),
        ],
    },
    TopCategory {
        name: "games",
        median_price: 50.0,
        subcategories: &[
            sub!("console": "Controller", "Charging Dock", "Headset"),
            sub!("pc": "Gaming Mouse", "Mouse Pad", "Mechanical Keyboard"),
        ],
    },
    TopCategory {
        name: "baby",
        median_price: 28.0,
        subcategories: &[
            sub!("feeding": "Bottle Set", "Bib Pack", "High Chair Mat"),
            sub!("nursery": "Night Light", "Mobile", "Swaddle"),
        ],
    },
    TopCategory {
        name: "auto",
        median_price: 32.0,
        subcategories: &[
            sub!("care": "Car Wax", "Microfiber Cloths", "Tire Shine"),
            sub!("interior": "Seat Cover", "Phone Mount", "Floor Mats"),
        ],
    },
    TopCategory {
        name: "travel",
        median_price: 55.0,
        subcategories: &[
            sub!("luggage": "Carry-On", "Duffel Bag", "Packing Cubes"),
            sub!("comfort": "Neck Pillow", "Eye Mask", "Travel Adapter"),
        ],
    },
];

/// Used for categories beyond the fixed table (`misc1`, `misc2`, …).
pub(crate) const EXTRA_SUBCATEGORIES: &[Subcategory] = &[
    sub!("basics": "Essentials Kit", "Starter Pack"),
    sub!("special": "Gift Box", "Collector Edition"),
];

/// Adjectives for titles and tags.
pub(crate) const ADJECTIVES: &[&str] = &[
    "Compact",
    "Classic",
    "Premium",
    "Essential",
    "Modern",
    "Vintage",
    "Deluxe",
    "Everyday",
    "Signature",
    "Urban",
    "Natural",
    "Bold",
    "Minimal",
    "Rugged",
    "Cozy",
    "Bright",
];

/// Brand names for titles and the `brand` attribute.
pub(crate) const BRANDS: &[&str] = &[
    "Norvik",
    "Altora",
    "Kestrel",
    "Lumina",
    "Brightwell",
    "Okapi",
    "Veltro",
    "Sundew",
    "Harbor & Pine",
    "Quill",
    "Zephyr",
    "Marlowe",
    "Tindra",
    "Corvo",
    "Pebble",
    "Ostara",
    "Fenwick",
    "Juniper",
    "Ardent",
    "Solvei",
];

/// Countries users come from, with relative weights.
pub(crate) const COUNTRIES: &[(&str, f64)] = &[
    ("US", 0.35),
    ("DE", 0.15),
    ("GB", 0.12),
    ("FR", 0.1),
    ("BR", 0.1),
    ("IN", 0.1),
    ("JP", 0.08),
];

/// Devices users browse on, with relative weights.
pub(crate) const DEVICES: &[(&str, f64)] = &[("android", 0.45), ("ios", 0.35), ("desktop", 0.2)];

/// The name, median price and subcategories of top-level category `index`.
pub(crate) fn top_category(index: usize) -> (String, f64, &'static [Subcategory]) {
    match TOP_CATEGORIES.get(index) {
        Some(top) => (top.name.to_string(), top.median_price, top.subcategories),
        None => {
            let k = index + 1 - TOP_CATEGORIES.len();
            (
                format!("misc{k}"),
                20.0 + (k % 7) as f64 * 10.0,
                EXTRA_SUBCATEGORIES,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_has_subcategories_with_nouns_and_unique_names() {
        let mut names: Vec<String> = (0..40).map(|i| top_category(i).0).collect();
        for i in 0..40 {
            let (_, price, subs) = top_category(i);
            assert!(price > 0.0);
            assert!(subs.len() >= 2 && subs.iter().all(|s| !s.nouns.is_empty()));
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 40);
    }
}
