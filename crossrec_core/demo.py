"""A seeded, realistic fake online shop: the embedded default dataset of the dashboard.

`generate()` returns three pandas frames (items, events, users) and nothing else; loading them into
the store is another module's job. The shop has ~15 top-level categories and ~65 sub-categories,
brand + model + attribute titles, per-sub-category prices and purpose-bearing descriptions, users with
1-3 interest categories and heavy-tailed activity, a view → cart → purchase funnel, Zipf popularity
within sub-categories, cold-start users (profile text, no events), new items (no events) and planted
cross-category journeys (`PLANTED_JOURNEYS`) with matching item pairs, so that the recommenders have
something true to find. Same seed → identical frames.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = ["DemoShop", "PLANTED_JOURNEYS", "generate"]

EVENT_NAMES = np.array(["view", "cart", "purchase"])
VIEW, CART, PURCHASE = 0, 1, 2
DAY = 86_400


@dataclass
class DemoShop:
    """The generated shop: three frames in the column layout the ingest module expects."""

    items: pd.DataFrame  # item_id, title, category, description, brand, price
    events: pd.DataFrame  # user_id, item_id, event_type, timestamp
    users: pd.DataFrame  # user_id, profile_text


# ---- catalogue table ---------------------------------------------------------------------------


class _Sub(NamedTuple):
    """One sub-category. Lists are '|'-separated; brands are 'Brand:Series/Series|Brand'.

    In a series a run of '#' becomes a number with that many digits. The title template may use
    {b} brand, {s} series, {a} {c} {d} attributes; empty parts collapse.
    """

    top: str
    name: str
    noun: str  # what one item is, for descriptions ("road running shoe")
    price: tuple[float, float]
    brands: str
    a: str
    c: str = ""
    d: str = ""
    uses: str = ""  # purposes, "... made for {use}."
    feats: str = ""  # one sentence each
    title: str = "{b} {s} {a} {c}"
    weight: float = 1.0  # organic popularity of the sub-category within its top category


_COLOURS = "Black|Grey|Navy|Olive|Sand|White"
_CATALOG: tuple[_Sub, ...] = (
    # Electronics
    _Sub("Electronics", "Headphones", "pair of headphones", (29, 449),
         "Sony:WH-1000XM#/ULT Wear|Bose:QuietComfort ##|Sennheiser:Momentum #|JBL:Tune ###|Audiora:Pulse #|Anker:Soundcore Q##",
         "Wireless Noise Cancelling Headphones|Over-Ear Bluetooth Headphones|True Wireless Earbuds|On-Ear Headphones",
         "Black|Silver|Midnight Blue|Sand",
         uses="long flights and daily commuting|focused work in noisy offices|music and podcasts on the go|gym workouts and runs",
         feats="Active noise cancelling blocks out engines and office chatter.|Up to 30 hours of battery life on one charge.|Multipoint Bluetooth pairs with a laptop and a phone at once.",
         title="{b} {s} {a}, {c}"),
    _Sub("Electronics", "Smartphones", "unlocked smartphone", (149, 1299),
         "Samsung:Galaxy S##/Galaxy A##|Apple:iPhone ##|Google:Pixel #|Nokora:Vibe #|Motorola:Moto G##",
         "128GB|256GB|512GB", "Unlocked Smartphone|5G Smartphone|Dual SIM Smartphone", "Black|Blue|Graphite|White",
         uses="everyday calls, messaging and mobile photography|mobile gaming and streaming|staying connected while travelling",
         feats="A triple camera shoots sharp photos day and night.|The all-day battery fast-charges to 50 percent in 30 minutes.|A bright OLED display stays readable in sunlight.",
         title="{b} {s} {a} {c}, {d}"),
    _Sub("Electronics", "Memory Cards", "memory card", (9, 249),
         "SanDisk:Extreme/Extreme PRO|Lexar:Professional ####x|Kingston:Canvas React|Samsung:PRO Plus|Corevo:FlashLine",
         "64GB|128GB|256GB|512GB|1TB", "SDXC UHS-I Card|SDXC UHS-II V90 Card|microSDXC Card with Adapter|CFexpress Type B Card",
         uses="shooting 4K video and fast burst photos|storing photos on cameras, drones and action cams|expanding storage on phones and consoles",
         feats="Read speeds up to 200 MB/s make offloading photos quick.|Waterproof, shockproof and X-ray proof.",
         weight=0.5),
    _Sub("Electronics", "Smartwatches", "smartwatch", (49, 799),
         "Garmin:Forerunner ###/Fenix #|Apple:Watch Series ##|Samsung:Galaxy Watch#|Fitbit:Charge #|Kinetra:Stride #",
         "GPS Running Watch|Smartwatch 41mm|Smartwatch 45mm|Fitness Tracker", "Black|Slate|Whitestone|Olive",
         uses="tracking runs, rides and swims|monitoring sleep, heart rate and daily steps|training for marathons and triathlons",
         feats="Built-in GPS maps every run without a phone.|Battery life of up to two weeks in smartwatch mode.",
         title="{b} {s} {a}, {c}"),
    _Sub("Electronics", "Bluetooth Speakers", "portable speaker", (29, 399),
         "JBL:Flip #/Charge #|Bose:SoundLink Flex|Ultimate Ears:Boom #|Sony:ULT Field #|Audiora:Beat Cube",
         "Portable Bluetooth Speaker|Waterproof Bluetooth Speaker|Party Speaker", "Black|Blue|Red|Camo",
         uses="beach days, camping trips and pool parties|music in the kitchen or on the balcony|outdoor gatherings with friends",
         feats="IP67 waterproof and dustproof, it even floats.|Twelve hours of deep, clear sound per charge.",
         title="{b} {s} {a}, {c}"),
    _Sub("Electronics", "Chargers & Power Banks", "charger", (15, 149),
         "Anker:PowerCore ##/Nano|Belkin:BoostCharge|Ugreen:Nexode ##|Voltix:Charge Pro|Mophie:Powerstation",
         "20000mAh Power Bank|10000mAh Power Bank|65W USB-C GaN Charger|3-in-1 Wireless Charging Stand|100W 4-Port Charger",
         "Black|White",
         uses="keeping phones charged on long travel days|charging a laptop, phone and earbuds from one plug|camping trips without wall power",
         feats="Fast charging over USB-C Power Delivery.|Compact enough for a jacket pocket.",
         title="{b} {s} {a}, {c}"),
    # Photography
    _Sub("Photography", "Cameras", "mirrorless camera", (499, 3499),
         "Sony:Alpha A#/ZV-E##|Canon:EOS R#/EOS R##|Nikon:Z#/Z##|Fujifilm:X-T#/X-S##|Panasonic:Lumix S#|Lumora:Vista M#",
         "Mirrorless Camera Body|Mirrorless Camera with 24-70mm Kit Lens|Full-Frame Mirrorless Camera Body|APS-C Mirrorless Camera with 18-55mm Lens",
         "Black|Silver|",
         uses="travel and street photography|portrait and wedding shoots|vlogging and 4K video|wildlife and sports photography|landscape photography",
         feats="Fast hybrid autofocus tracks eyes and moving subjects.|In-body image stabilisation keeps handheld shots sharp.|A weather-sealed body for shooting outdoors in any season.",
         title="{b} {s} {a}, {c}"),
    _Sub("Photography", "Lenses", "camera lens", (199, 2499),
         "Sigma:DG DN Art/DG DN Contemporary|Tamron:Di III VXD|Sony:G Master/G|Canon:RF L/RF STM|Nikon:NIKKOR Z S|Fujifilm:XF R WR|Viltrox:AF Pro",
         "35mm f/1.4|50mm f/1.8|85mm f/1.4|24-70mm f/2.8|70-200mm f/4|16-35mm f/4|100-400mm f/5.6|90mm f/2.8 Macro",
         "Sony E|Canon RF|Nikon Z|Fujifilm X|L-Mount",
         uses="portraits with creamy background blur|landscapes and architecture|wildlife and sports from a distance|low-light events and street photography|close-up macro shots of flowers and insects",
         feats="Fast, silent autofocus suits both stills and video.|Weather-sealed with a fluorine-coated front element.",
         title="{b} {a} {s} Lens for {c}", weight=0.7),
    _Sub("Photography", "Tripods", "tripod", (25, 499),
         "Manfrotto:Befree Advanced/Element MII|Peak Design:Travel|Benro:Rhino FTR##|Joby:GorillaPod #K|K&F Concept:Lite T##|Trekpod:Carbon C##",
         "Carbon Fibre Travel Tripod|Aluminium Tripod with Ball Head|Flexible Tripod|Video Tripod with Fluid Head", "Black|Grey|",
         uses="landscape and long-exposure photography|travel photography with a light pack|vlogging and steady video|night sky and astrophotography",
         feats="Folds down to 40 cm and weighs under 1.5 kg.|A quick-release plate swaps cameras in seconds.",
         title="{b} {s} {a}, {c}", weight=0.6),
    _Sub("Photography", "Camera Bags", "camera bag", (39, 349),
         "Peak Design:Everyday/Everyday V#|Lowepro:ProTactic ###|Think Tank:StreetWalker|Wandrd:PRVKE ##|Trekpod:Voyager",
         "Camera Backpack 20L|Camera Sling 6L|Camera Messenger Bag|Rolling Camera Case", "Black|Charcoal|Sage",
         uses="carrying a camera body, lenses and a drone on hikes|city walks and travel days|protecting gear on flights",
         feats="Padded, configurable dividers fit a body and three lenses.|Weatherproof shell with a rain cover.",
         title="{b} {s} {a}, {c}", weight=0.6),
    _Sub("Photography", "Drones", "camera drone", (299, 1999),
         "DJI:Mini #/Air #/Avata #|Autel:EVO Lite|Skyvio:Hawk #|Parrot:Anafi",
         "4K Camera Drone|Camera Drone Fly More Combo|Compact Folding Drone", "Grey|White|",
         uses="aerial photography on trips|filming landscapes from above|cinematic travel videos",
         feats="Obstacle sensing on all sides for safer flights.|Thirty-four minutes of flight time per battery.",
         title="{b} {s} {a}, {c}", weight=0.6),
    # Computers
    _Sub("Computers", "Laptops", "laptop", (399, 2999),
         "Apple:MacBook Air/MacBook Pro|Dell:XPS ##/Inspiron ##|Lenovo:ThinkPad X#/IdeaPad Slim #|HP:Spectre x###/Pavilion ##|Asus:Zenbook ##/ROG Zephyrus G##|Acer:Swift #",
         "13-inch|14-inch|15.6-inch|16-inch",
         "Laptop, 16GB RAM, 512GB SSD|Laptop, 8GB RAM, 256GB SSD|Gaming Laptop, RTX Graphics|Laptop, 32GB RAM, 1TB SSD",
         uses="work, study and video calls|programming and creative work|gaming and streaming|travel and working from cafes",
         feats="A bright, colour-accurate display for photos and video.|All-day battery life and a backlit keyboard.|Thunderbolt ports drive two external monitors."),
    _Sub("Computers", "Laptop Bags", "laptop bag", (19, 199),
         "Targus:CitySmart/Cypress|Samsonite:Pro-DLX #|Incase:Icon|Herschel:Heritage|Nomatic:Slim|Urbano:Transit",
         "Laptop Backpack|Laptop Sleeve|Messenger Laptop Bag|Rolling Laptop Case", "13-inch|14-inch|15.6-inch|17-inch",
         "Black|Grey|Navy",
         uses="daily commuting with a laptop|business travel and carry-on flights|university days between lectures",
         feats="A padded compartment keeps the laptop safe from bumps.|Water-resistant fabric and a luggage pass-through strap.",
         title="{b} {s} {c} {a}, {d}", weight=0.6),
    _Sub("Computers", "Monitors", "monitor", (129, 999),
         "Dell:UltraSharp U####|LG:UltraGear ##G#|Samsung:Odyssey G#|BenQ:PD####|Asus:ProArt PA###",
         "24-inch|27-inch|32-inch|34-inch Ultrawide", "4K IPS Monitor|QHD 165Hz Gaming Monitor|USB-C Monitor|Full HD Monitor",
         uses="photo editing and colour-accurate design work|competitive gaming|a home office setup with a laptop",
         feats="USB-C with 90 W charging runs a laptop on one cable.|Factory-calibrated colour out of the box."),
    _Sub("Computers", "Keyboards & Mice", "keyboard or mouse", (19, 229),
         "Logitech:MX Keys/MX Master #|Razer:DeathAdder V#/BlackWidow V#|Keychron:K#/Q#|Corsair:K##|Microsoft:Sculpt",
         "Wireless Keyboard|Mechanical Keyboard|Wireless Mouse|Ergonomic Mouse|Gaming Mouse", "Black|Graphite|White",
         uses="long typing sessions|precise work in spreadsheets and design tools|gaming",
         feats="Connects to three devices and switches with one key.|Rechargeable over USB-C, a full charge lasts weeks.",
         title="{b} {s} {a}, {c}"),
    _Sub("Computers", "Storage Drives", "storage drive", (49, 399),
         "Samsung:T# Shield/### EVO Plus|WD:My Passport/Black SN###|Seagate:Expansion/FireCuda ###|Crucial:X#|SanDisk:Extreme Portable",
         "500GB|1TB|2TB|4TB", "Portable SSD|External Hard Drive|NVMe M.2 Internal SSD",
         uses="backing up photos and videos|moving large files between computers|expanding laptop and console storage",
         feats="Transfers up to 1,050 MB/s over USB-C.|Drop-resistant up to two metres."),
    # Fashion
    _Sub("Fashion", "Jackets", "jacket", (49, 499),
         "Patagonia:Torrentshell/Nano Puff|The North Face:Resolve/ThermoBall|Columbia:Watertight|Arc'teryx:Beta/Atom|Fjallmark:Vidda|Uniqlo:Ultra Light",
         "Men's|Women's", "Rain Jacket|Insulated Jacket|Down Jacket|Softshell Jacket|Fleece Jacket", _COLOURS,
         uses="rainy commutes and autumn hikes|cold winter days in the city|layering on mountain trips",
         feats="Windproof and waterproof with taped seams.|Packs into its own pocket for travel.",
         title="{b} {s} {a} {c}, {d}"),
    _Sub("Fashion", "T-Shirts", "t-shirt", (12, 59),
         "Uniqlo:AIRism/U|Nike:Dri-FIT|Adidas:Essentials|Patagonia:Capilene|Basicly:Everyday",
         "Men's|Women's", "Crew Neck T-Shirt|Performance Tee|Organic Cotton T-Shirt|V-Neck T-Shirt", _COLOURS,
         uses="everyday wear and layering|workouts and summer runs|relaxed weekends",
         feats="Soft, breathable cotton that keeps its shape wash after wash.|Quick-drying fabric wicks sweat away.",
         title="{b} {s} {a} {c}, {d}"),
    _Sub("Fashion", "Jeans", "pair of jeans", (39, 149),
         "Levi's:5## Slim/5## Straight|Wrangler:Retro|Lee:Rider|Denimco:Classic",
         "Men's|Women's", "Slim Fit Jeans|Straight Leg Jeans|Relaxed Fit Jeans|Skinny Jeans",
         "Dark Wash|Light Wash|Black|Indigo",
         uses="everyday casual wear|the office on dress-down days|weekends out",
         feats="Stretch denim moves with you all day.", title="{b} {s} {a} {c}, {d}"),
    _Sub("Fashion", "Dresses", "dress", (29, 249),
         "Zara:Studio|Mango:Linen|H&M:Conscious|Reformation:Juliette|Solene:Riviera",
         "Women's", "Midi Wrap Dress|Linen Summer Dress|Knit Sweater Dress|Maxi Dress", "Black|Sage|Terracotta|Ivory|Floral",
         uses="summer weddings and garden parties|office days and dinners|holidays by the sea",
         feats="Lightweight fabric that packs without creasing.", title="{b} {s} {a} {c}, {d}"),
    # Shoes
    _Sub("Shoes", "Running Shoes", "road running shoe", (79, 279),
         "Nike:Pegasus ##/Vaporfly #|Adidas:Adizero Boston ##/Ultraboost ##|Asics:Gel-Nimbus ##/Novablast #|Brooks:Ghost ##/Glycerin ##|Hoka:Clifton #/Mach #|Saucony:Ride ##|New Balance:Fresh Foam 1080v##",
         "Men's|Women's", "Road Running Shoe|Neutral Running Shoe|Stability Running Shoe|Racing Shoe",
         uses="daily road runs and marathon training|race day and fast tempo sessions|easy recovery runs on pavement",
         feats="Responsive foam cushioning returns energy with every stride.|A breathable engineered mesh upper.|A durable rubber outsole for high weekly mileage."),
    _Sub("Shoes", "Trail Running Shoes", "trail running shoe", (89, 219),
         "Salomon:Speedcross #/XA Pro 3D V#|Hoka:Speedgoat #|La Sportiva:Bushido #|Altra:Lone Peak #|Merrell:MTL Long Sky #|Fjallmark:Ridge #",
         "Men's|Women's", "Trail Running Shoe|Waterproof Trail Shoe|GTX Trail Running Shoe",
         uses="trail running and hiking on rocky mountain paths|muddy forest trails and ultra races|fast hiking and mountain running",
         feats="Aggressive lugs grip mud, roots and wet rock.|A rock plate protects the foot on technical descents.",
         weight=0.8),
    _Sub("Shoes", "Hiking Boots", "hiking boot", (89, 329),
         "Merrell:Moab #|Salomon:Quest #D|Lowa:Renegade|Scarpa:Zodiac|Keen:Targhee #|Fjallmark:Kebne",
         "Men's|Women's", "Waterproof Hiking Boot|Mid Hiking Boot|Backpacking Boot|Hiking Shoe",
         uses="day hikes and multi-day treks in the mountains|rocky, wet trails|backpacking with a heavy pack",
         feats="A waterproof membrane keeps feet dry in streams and rain.|A Vibram sole grips on loose scree."),
    _Sub("Shoes", "Sneakers", "sneaker", (49, 189),
         "Nike:Air Force #/Air Max ##|Adidas:Samba/Stan Smith|Converse:Chuck ##|Vans:Old Skool|Veja:V-##|New Balance:###",
         "Men's|Women's", "Sneaker|Low-Top Sneaker|Leather Sneaker|Canvas Sneaker", "White|Black|Grey|Green",
         uses="everyday casual wear|city walks and weekends|travel days on your feet",
         feats="A cushioned insole for all-day comfort.", title="{b} {s} {a} {c}, {d}"),
    # Sports & Outdoors
    _Sub("Sports & Outdoors", "Camping Tents", "tent", (59, 699),
         "MSR:Hubba Hubba/Elixir #|Big Agnes:Copper Spur UL#|Coleman:Sundome|REI:Half Dome SL #|Naturehike:Cloud Up #|Fjallmark:Lavvu",
         "1-Person|2-Person|3-Person|4-Person|6-Person", "Backpacking Tent|Family Camping Tent|Ultralight Tent|4-Season Tent",
         uses="backpacking trips and wild camping|family camping weekends at the lake|festival and car camping",
         feats="Sets up in five minutes with colour-coded poles.|A full rain fly and taped floor keep storms out."),
    _Sub("Sports & Outdoors", "Sleeping Bags", "sleeping bag", (39, 549),
         "Therm-a-Rest:Hyperion/Questar|Marmot:Trestles ##|Sea to Summit:Spark|Coleman:Brazos|Fjallmark:Glimt",
         "Down|Synthetic", "Mummy Sleeping Bag|Rectangular Sleeping Bag|Ultralight Sleeping Bag|Kids' Sleeping Bag",
         "20°F|32°F|0°F|40°F",
         uses="cold nights on backpacking trips|summer camping with the family|winter camping and alpine bivouacs",
         feats="Packs down to the size of a water bottle.|A draft collar and hood trap warmth.",
         title="{b} {s} {d} {a} {c}", weight=0.6),
    _Sub("Sports & Outdoors", "Hiking Backpacks", "hiking backpack", (39, 349),
         "Osprey:Talon ##/Atmos AG ##|Deuter:Futura ##|Gregory:Zulu ##|Fjallmark:Kaipak ##|REI:Flash ##",
         "Hiking Backpack|Daypack|Backpacking Pack|Hydration Pack", "Men's|Women's|Unisex",
         uses="day hikes and multi-day treks in the mountains|trail running and fast hiking|carrying water and layers on long walks",
         feats="A ventilated mesh back panel keeps you cool on climbs.|Hip-belt pockets hold snacks and a phone.",
         title="{b} {s} {c} {a}"),
    _Sub("Sports & Outdoors", "Bikes", "bike", (399, 3499),
         "Trek:Marlin #/Domane AL #|Specialized:Rockhopper/Sirrus X #|Giant:Talon #|Cannondale:Topstone #|Velora:Urban #",
         "Mountain Bike|Gravel Bike|Hybrid Bike|Road Bike|Electric Bike", "Small|Medium|Large",
         uses="commuting to work|mountain bike trails|weekend road rides and gravel adventures",
         feats="Hydraulic disc brakes stop confidently in the wet.|A lightweight aluminium frame with rack mounts.",
         title="{b} {s} {a}, {c}"),
    _Sub("Sports & Outdoors", "Yoga & Fitness", "piece of fitness gear", (15, 449),
         "Manduka:PRO|Lululemon:The Mat|Gaiam:Premium|Bowflex:SelectTech ###|Kinetra:Core",
         "Yoga Mat 6mm|Yoga Mat 4mm|Adjustable Dumbbells|Resistance Band Set|Foam Roller", "Black|Purple|Sage|Blue",
         uses="home workouts and strength training|yoga and pilates practice|stretching and recovery after runs",
         feats="A non-slip surface that grips even when sweaty.|Compact storage for small apartments.",
         title="{b} {s} {a}, {c}"),
    # Health & Nutrition
    _Sub("Health & Nutrition", "Sports Nutrition", "sports nutrition product", (14, 79),
         "Optimum Nutrition:Gold Standard/Serious|Myprotein:Impact|MuscleTech:Platinum|Nutrium:Endure/Fuel|SiS:Science|Maxfuel:Pro",
         "Whey 2 lb|Whey 5 lb|Plant Protein 2 lb|Energy Gel 12-Pack|Electrolyte Drink Mix 20-Pack|Creatine Monohydrate 300g",
         "Chocolate|Vanilla|Strawberry|Unflavoured|Salted Caramel|Citrus",
         uses="muscle recovery after workouts|fuelling long runs, rides and marathons|daily protein for strength training",
         feats="Twenty-four grams of protein per serving.|Mixes smoothly with water or milk.|Informed-Sport tested for athletes.",
         weight=0.8),
    _Sub("Health & Nutrition", "Vitamins & Supplements", "supplement", (8, 49),
         "Nature Made:Daily|Garden of Life:mykind|Solgar:Essentials|NOW:Foods|Vitalia:Pure",
         "Vitamin D3 2000 IU|Omega-3 Fish Oil|Magnesium Glycinate|Multivitamin for Women|Multivitamin for Men|Prenatal Multivitamin|Zinc + Vitamin C",
         "60 Softgels|90 Capsules|120 Tablets|180 Capsules",
         uses="everyday wellbeing|immune support through winter|pregnancy and breastfeeding",
         feats="Third-party tested for purity.|One small capsule a day.", title="{b} {s} {a}, {c}"),
    _Sub("Health & Nutrition", "Recovery & Wellness", "wellness device", (29, 399),
         "Theragun:Mini/Prime|Hyperice:Hypervolt #|Kinetra:Relief|Omron:Platinum|Renpho:Active",
         "Massage Gun|Heated Massage Pad|Blood Pressure Monitor|Electric Foot Massager|Smart Body Scale", "Black|White|",
         uses="muscle recovery after runs and workouts|relieving back and neck tension|monitoring your health at home",
         feats="Five speed settings and four attachments.|Quiet enough to use while watching TV.",
         title="{b} {s} {a}, {c}", weight=0.7),
    # Baby
    _Sub("Baby", "Strollers", "stroller", (199, 1299),
         "Bugaboo:Fox #/Butterfly|UPPAbaby:Vista V#/Cruz V#|Babyzen:YOYO#|Joolz:Day+|Nuna:Mixx Next|Cybex:Priam",
         "Full-Size Stroller|Compact Travel Stroller|Jogging Stroller|Double Stroller|Stroller with Bassinet",
         "Black|Grey Melange|Navy|Olive",
         uses="daily walks with a newborn|city travel and flights with a toddler|jogging with a baby",
         feats="One-hand fold that fits in a small car boot.|All-wheel suspension for cobbles and park paths.",
         title="{b} {s} {a}, {c}"),
    _Sub("Baby", "Car Seats", "car seat", (89, 599),
         "Maxi-Cosi:Pearl/Pebble 360|Cybex:Sirona/Cloud T|Britax:Dualfix|Nuna:Pipa|Graco:SnugRide ##",
         "Infant Car Seat|Convertible Car Seat|Booster Seat|360 Rotating Car Seat", "Black|Grey|Navy|Beige",
         uses="safe car journeys from birth|growing toddlers on long drives|everyday school runs",
         feats="i-Size certified with side-impact protection.|ISOFIX installation in under a minute.",
         title="{b} {s} {a}, {c}"),
    _Sub("Baby", "Baby Gear", "piece of baby gear", (39, 399),
         "BabyBjörn:Bliss/Harmony|Ergobaby:Omni 360|Fisher-Price:Snuga|Boppy:Original|Lullabo:Nest",
         "Baby Carrier|Bouncer|Baby Swing|Travel Playard|High Chair", "Grey|Sand|Navy|Sage",
         uses="keeping a newborn close and soothed|feeding and play time at home|naps on family trips",
         feats="Ergonomic support for baby's hips and spine.|Machine-washable fabric.",
         title="{b} {s} {a}, {c}"),
    _Sub("Baby", "Diapers & Wipes", "pack of diapers or wipes", (9, 69),
         "Pampers:Swaddlers/Pure|Huggies:Little Snugglers|WaterWipes:Sensitive|Honest:Clean Conscious|Kindly:Soft",
         "Diapers Size 1|Diapers Size 2|Diapers Size 3|Diapers Size 4|Baby Wipes", "Pack of 84|Pack of 120|Pack of 198|12-Pack",
         uses="sensitive newborn skin|overnight dryness|busy days out with a baby",
         feats="Hypoallergenic and fragrance-free.", title="{b} {s} {a}, {c}"),
    _Sub("Baby", "Feeding", "baby feeding product", (12, 249),
         "Philips Avent:Natural|Dr. Brown's:Options+|Tommee Tippee:Closer to Nature|Medela:Swing|Lullabo:Feed",
         "Baby Bottle Set|Electric Breast Pump|Bottle Sterilizer|Silicone Feeding Set|Bottle Warmer", "Clear|Blue|Pink|Grey|Sage",
         uses="bottle feeding newborns|starting solid food|night feeds without fuss",
         feats="BPA-free and dishwasher safe.", title="{b} {s} {a}, {c}", weight=0.8),
    # Home & Kitchen
    _Sub("Home & Kitchen", "Coffee Machines", "coffee machine", (79, 1499),
         "De'Longhi:Dedica/Magnifica S|Breville:Barista Express/Bambino|Nespresso:Vertuo/Essenza Mini|Sage:Oracle|Moccamaster:KBG|Brewsta:Crema #",
         "Espresso Machine|Bean-to-Cup Coffee Machine|Capsule Coffee Machine|Drip Coffee Maker", "Black|Stainless Steel|Silver|Red",
         uses="espresso and cappuccino at home|a quick morning cup before work|coffee lovers who grind fresh beans",
         feats="A steam wand textures milk for latte art.|Heats up in under a minute.",
         title="{b} {s} {a}, {c}"),
    _Sub("Home & Kitchen", "Cookware", "piece of cookware", (25, 449),
         "Le Creuset:Signature|Lodge:Classic|Tefal:Ingenio|All-Clad:D3|Oxalis:Home",
         "Cast Iron Skillet 10-inch|Dutch Oven 5.5 qt|Non-Stick Frying Pan Set|Stainless Steel Cookware Set 10-Piece|Saucepan 2 qt",
         "Black|Cerise|Marine|Stainless",
         uses="searing, roasting and slow cooking|everyday family meals|braising stews and baking bread",
         feats="Works on gas, electric and induction hobs.|Oven-safe up to 260 °C.", title="{b} {s} {a}, {c}"),
    _Sub("Home & Kitchen", "Small Appliances", "kitchen appliance", (39, 599),
         "Ninja:Foodi/Professional|Vitamix:Explorian|KitchenAid:Artisan|Instant Pot:Duo|Philips:Series ####|Oxalis:Home",
         "Air Fryer 5.5L|High-Speed Blender|Stand Mixer|Multi-Cooker 6 qt|Electric Kettle", "Black|Silver|Red|Cream",
         uses="quick weeknight dinners|smoothies and soups|baking bread and cakes",
         feats="Dishwasher-safe parts for easy cleaning.|Preset programmes take the guesswork out.",
         title="{b} {s} {a}, {c}"),
    _Sub("Home & Kitchen", "Bedding", "bedding item", (29, 349),
         "Brooklinen:Luxe|Parachute:Linen|Casper:Original|Dreamwell:Cloud|Nordhem:Dvala",
         "Queen Sheet Set|King Duvet Cover|Memory Foam Pillow|Down Alternative Comforter|Weighted Blanket", "White|Grey|Sage|Sand",
         uses="a cool, comfortable night's sleep|refreshing a guest bedroom|hot sleepers",
         feats="Breathable long-staple cotton that softens with every wash.", title="{b} {s} {a}, {c}"),
    # Home Safety & DIY
    _Sub("Home Safety & DIY", "Child Safety", "child safety product", (9, 129),
         "Safety 1st:OutSmart|Munchkin:Xtra|Regalo:Easy Step|Dreambaby:Chelsea|Lullabo:Guard",
         "Baby Gate|Stair Gate|Cabinet Locks 10-Pack|Outlet Covers 24-Pack|Corner Guards 8-Pack|Furniture Anti-Tip Straps",
         "White|Black|Grey",
         uses="baby-proofing stairs and kitchens|keeping curious toddlers away from cabinets and outlets|a safe home for crawling babies",
         feats="Installs without drilling.|Tested to child safety standards.", title="{b} {s} {a}, {c}", weight=0.6),
    _Sub("Home Safety & DIY", "Smoke & CO Alarms", "safety alarm", (14, 149),
         "Kidde:Firex|First Alert:Onelink|Google:Nest Protect|X-Sense:XS##|Fireguard:Home",
         "Smoke Alarm|Smoke and Carbon Monoxide Alarm|Carbon Monoxide Detector|Fire Extinguisher",
         "Battery Powered|Hardwired|2-Pack|3-Pack",
         uses="protecting bedrooms and hallways|peace of mind for families|new homes and rentals",
         feats="A ten-year sealed battery.|Sends alerts to your phone.", title="{b} {s} {a}, {c}"),
    _Sub("Home Safety & DIY", "Power Tools", "power tool", (49, 499),
         "DeWalt:20V MAX/XR|Makita:LXT|Bosch:Professional|Ryobi:ONE+|Milwaukee:M18|Forgeline:Pro",
         "Cordless Drill Driver|Impact Driver|Circular Saw|Random Orbit Sander|Combo Kit",
         "with 2 Batteries|Tool Only|with Charger and Case",
         uses="home renovation and furniture assembly|weekend DIY projects|woodworking in the garage",
         feats="A brushless motor delivers more runtime per charge.|An LED work light shows the job in dark corners."),
    _Sub("Home Safety & DIY", "Smart Home Security", "smart home security device", (39, 329),
         "Ring:Video Doorbell #|Arlo:Pro #|Eufy:SoloCam S##|Yale:Linus|August:Wi-Fi|Google:Nest Cam",
         "Video Doorbell|Outdoor Security Camera|Indoor Camera|Smart Lock|Baby Monitor Camera", "White|Black",
         uses="watching the front door from your phone|keeping an eye on the nursery|securing a home while travelling",
         feats="2K video with colour night vision.|Works with Alexa and Google Home.", title="{b} {s} {a}, {c}"),
    # Beauty
    _Sub("Beauty", "Skincare", "skincare product", (8, 69),
         "CeraVe:Hydrating|La Roche-Posay:Toleriane|The Ordinary:Niacinamide|Neutrogena:Hydro Boost|Lumiere:Glow",
         "Facial Cleanser|Moisturising Cream|Vitamin C Serum|SPF 50 Sunscreen|Retinol Night Cream", "30ml|50ml|100ml|236ml",
         uses="dry and sensitive skin|daily sun protection|an evening skincare routine",
         feats="Fragrance-free and dermatologist tested.", title="{b} {s} {a}, {c}"),
    _Sub("Beauty", "Makeup", "makeup product", (7, 59),
         "Maybelline:Sky High/Fit Me|L'Oreal:True Match|NARS:Radiant|Fenty Beauty:Pro Filt'r|Velour:Studio",
         "Mascara|Foundation|Concealer|Lipstick|Eyeshadow Palette", "Shade 110|Shade 220|Shade 330|Nude|Berry|Very Black",
         uses="everyday natural looks|evening makeup|long days that need lasting wear",
         feats="Long-wearing and transfer-resistant.", title="{b} {s} {a}, {c}"),
    _Sub("Beauty", "Hair Care", "hair care product", (9, 599),
         "Dyson:Supersonic/Airwrap|Olaplex:No.#|Moroccanoil:Treatment|Pantene:Pro-V|GHD:Platinum+|Lumiere:Silk",
         "Hair Dryer|Styling Multi-Tool|Repair Shampoo|Hair Oil|Flat Iron", "Nickel/Copper|Black/Gold|Travel Size|Salon Size|",
         title="{b} {s} {a}, {c}",
         uses="frizz-free styling at home|repairing dry, damaged hair|quick blow-drys before work",
         feats="Intelligent heat control protects shine."),
    _Sub("Beauty", "Fragrance", "fragrance", (39, 249),
         "Chanel:Coco/No. #|Dior:Sauvage|Jo Malone:Wood Sage|YSL:Libre|Aurelle:Nuit",
         "Eau de Parfum|Eau de Toilette|Cologne", "30ml|50ml|100ml",
         uses="everyday wear|evenings out|gifts for someone special",
         feats="Notes of bergamot, cedar and amber.", title="{b} {s} {a}, {c}", weight=0.7),
    # Books
    _Sub("Books", "Photography Books", "photography book", (15, 59),
         "Focal Press|Rocky Nook|Ilex Press|Lenswise Press",
         "The Photographer's Eye|Understanding Exposure|Light and Shadow|Mastering Composition|The Landscape Photography Handbook|Portrait Lighting Essentials|Street Photography Field Guide|Wildlife Photography Secrets|The Drone Photographer",
         "Paperback|Hardcover|2nd Edition Paperback",
         uses="learning exposure, composition and light|photographers upgrading from auto mode|inspiration for landscape and travel photography",
         title="{a} ({c}, {b})", weight=0.6),
    _Sub("Books", "Cookbooks", "cookbook", (12, 45),
         "Penguin Kitchen|Hearthside Press|Tenspeed Books|Salt & Page",
         "Weeknight Vegetarian|The Sourdough Year|One-Pan Family Dinners|Simply Mediterranean|The Plant-Based Athlete|Bake Like a Pro|Ramen at Home|Slow Cooker Classics|Cooking for Baby|Coffee at Home",
         "Paperback|Hardcover|Spiral-Bound",
         uses="quick weeknight cooking|home bakers and bread lovers|healthy meals for active people",
         title="{a} ({c}, {b})"),
    _Sub("Books", "Fiction", "novel", (9, 29),
         "Harbour Books|Vintage Lane|Northwind Press|Paper Moon",
         "The Silent Harbour|A Map of Small Fires|Winter in Lisbon|The Clockmaker's Daughter|Northern Lights Fall|The Last Orchard|Paper Moons|The Glass Lighthouse|Midnight at the Archive|Salt and Stars",
         "Paperback|Hardcover|Large Print",
         uses="cosy evenings and holiday reading|book clubs|long train journeys",
         title="{a} ({c}, {b})"),
    _Sub("Books", "Parenting Books", "parenting book", (12, 32),
         "Little Steps Press|Hearthside Press|Nurture Books",
         "The First Year Handbook|Sleep Solutions for Babies|Raising Calm Kids|The Toddler Years|Baby-Led Weaning Made Easy|The New Parent's Survival Guide|Positive Discipline Day by Day",
         "Paperback|Hardcover|Kindle Edition",
         uses="new and expecting parents|getting a baby to sleep through the night|raising toddlers with patience",
         title="{a} ({c}, {b})", weight=0.7),
    _Sub("Books", "Travel Guides", "travel guide", (12, 35),
         "Wayfarer Guides|Trailhead Books|Lonely Compass",
         "Hiking the Alps|Japan by Rail|Iceland Road Trip|Patagonia Trekking Guide|Scottish Highlands Walks|Lisbon & Porto|National Parks of the West|Trail Running Routes of Europe",
         "Paperback|Hardcover|Pocket Edition",
         uses="planning hiking and trekking holidays|road trips and city breaks|trail running and mountain adventures",
         title="{a} ({c}, {b})", weight=0.8),
    # Toys
    _Sub("Toys", "Building Sets", "building set", (15, 249),
         "LEGO:Technic 42###/City 60###/Creator 3in1 31###|Mega:Bloks|Magna-Tiles:Classic|Brickly:Build ##",
         "Race Car|Space Shuttle|Fire Station|Castle|Dinosaur|Treehouse", "Building Set|Building Kit|Construction Toy",
         uses="creative play for kids aged 6 and up|family building afternoons|birthday gifts",
         feats="Step-by-step instructions included.", title="{b} {s} {a} {c}"),
    _Sub("Toys", "Board Games", "board game", (15, 79),
         "Hasbro|Ravensburger|Catan Studio|Days of Wonder|Playforge",
         "Settlers Quest|Ticket Trail|Dragon Dice|Family Trivia|Cosmic Cartographers|Harbour Kings|Labyrinth Run|Forest Friends",
         "Board Game|Card Game|Party Game|Strategy Game", "2-4 Players|2-6 Players|3-8 Players",
         uses="family game nights|parties with friends|two-player evenings",
         title="{b} {a} {c}, {d}"),
    _Sub("Toys", "Plush Toys", "plush toy", (9, 69),
         "Jellycat:Bashful|Steiff:Classic|Squishmallows|Cuddlio:Snug",
         "Bunny|Bear|Elephant|Dragon|Fox|Penguin|Otter", "Plush Toy 12-inch|Soft Toy 8-inch|Giant Plush 24-inch", "Cream|Grey|Blush|Blue",
         uses="a baby's first cuddly friend|bedtime comfort for toddlers|gifts for newborns",
         feats="Super-soft and safe from birth.", title="{b} {s} {a} {c}, {d}", weight=0.7),
    _Sub("Toys", "Outdoor Toys", "outdoor toy", (25, 399),
         "Little Tikes|Step2|Micro:Maxi Deluxe/Mini|Strider:Classic|Playzone",
         "Kick Scooter|Balance Bike|Sandbox|Water Table|Climbing Dome|Trampoline 8ft", "Red|Blue|Green|Pink",
         uses="active play in the garden|learning to ride before pedals|summer days outside",
         feats="Weather-resistant and easy to assemble.", title="{b} {s} {a}, {c}"),
    # Pets
    _Sub("Pets", "Dog Food", "dog food", (14, 99),
         "Purina Pro Plan|Royal Canin|Hill's Science Diet|Orijen|Blue Buffalo|Pawsome",
         "Adult Dry Dog Food|Puppy Dry Dog Food|Grain-Free Dog Food|Senior Dog Food|Wet Dog Food 12-Pack",
         "Chicken & Rice|Salmon|Lamb|Beef", "4 lb|15 lb|30 lb",
         uses="everyday nutrition for active dogs|growing puppies|dogs with sensitive stomachs",
         feats="Real meat is the first ingredient.|No artificial colours or flavours.", title="{b} {a}, {c}, {d}"),
    _Sub("Pets", "Dog Toys", "dog toy", (6, 49),
         "Kong:Classic/Extreme|Chuckit!:Ultra|Nylabone:Power Chew|West Paw:Zogoflex|Pawsome:Tug",
         "Chew Toy|Ball Launcher|Rope Tug Toy|Treat Puzzle|Squeaky Plush Toy", "Small|Medium|Large|X-Large",
         uses="power chewers and teething puppies|fetch at the park|keeping dogs busy while you work",
         feats="Tough natural rubber that bounces unpredictably.", title="{b} {s} {a}, {c}", weight=0.6),
    _Sub("Pets", "Cat Food", "cat food", (9, 69),
         "Purina:Fancy Feast/Pro Plan|Royal Canin|Hill's Science Diet|Whiskas|Feline Fine",
         "Adult Dry Cat Food|Kitten Food|Indoor Cat Food|Wet Cat Food 24-Pack", "Chicken|Salmon|Tuna|Turkey", "3 lb|7 lb|16 lb",
         uses="indoor cats|growing kittens|picky eaters",
         feats="Complete and balanced nutrition with taurine.", title="{b} {s} {a}, {c}, {d}"),
    _Sub("Pets", "Dog Walking Gear", "piece of dog walking gear", (12, 89),
         "Ruffwear:Front Range/Flagline|Julius-K9:IDC|Flexi:New Classic|Pawsome:Trail",
         "Dog Harness|Retractable Leash|Hands-Free Running Leash|Dog Collar|Dog Backpack", "Small|Medium|Large",
         uses="walks, runs and hikes with your dog|training puppies on the lead|night walks with reflective trim",
         title="{b} {s} {a}, {c}", weight=0.7),
    # Grocery
    _Sub("Grocery", "Coffee & Tea", "coffee or tea", (6, 39),
         "Lavazza:Qualità Oro/Super Crema|Illy:Classico|Starbucks:Pike Place|Peet's:Major Dickason's|Bean & Bloom:Single Origin",
         "Whole Bean Coffee 1 kg|Ground Coffee 250g|Espresso Capsules 50-Pack|Whole Bean Coffee 500g", "Medium Roast|Dark Roast|Decaf|Light Roast",
         uses="espresso machines and moka pots|a smooth morning filter coffee|coffee lovers who grind fresh beans",
         feats="Roasted in small batches for a rich crema.", title="{b} {s} {a}, {c}"),
    _Sub("Grocery", "Snacks", "snack", (4, 39),
         "KIND|RXBAR|Clif:Builders|Nature Valley|Nutrium:Bar",
         "Protein Bars 12-Pack|Granola Bars 24-Pack|Trail Mix 1 lb|Dark Chocolate Almonds 10 oz|Energy Bites 8-Pack",
         "Peanut Butter|Dark Chocolate Sea Salt|Almond|Berry|Honey Oat",
         uses="snacks on hikes and long rides|lunchboxes and office drawers|a quick boost before a workout",
         feats="Ten grams of protein and no artificial sweeteners.", title="{b} {s} {a}, {c}"),
    _Sub("Grocery", "Pantry", "pantry staple", (3, 39),
         "Barilla|Rao's|Bob's Red Mill|Kirkland|Harvest Lane",
         "Extra Virgin Olive Oil 1L|Spaghetti 6-Pack|Marinara Sauce 24 oz|Rolled Oats 2 kg|Basmati Rice 5 kg|Almond Butter 16 oz",
         "Organic|Classic|Family Size",
         uses="everyday family cooking|stocking the pantry|healthy breakfasts",
         title="{b} {c} {a}", weight=0.7),
)

_TOP_WEIGHT = {"Electronics": 1.4, "Fashion": 1.3, "Home & Kitchen": 1.2, "Beauty": 1.1, "Shoes": 1.1,
               "Photography": 0.7, "Baby": 0.7, "Pets": 0.8, "Home Safety & DIY": 0.7}

# Camera mount of a first-party lens brand; third-party lens brands get any mount.
_MOUNTS = {"Sony": "Sony E", "Canon": "Canon RF", "Nikon": "Nikon Z", "Fujifilm": "Fujifilm X", "Panasonic": "L-Mount"}
_MOUNT_OWNER = {m: b for b, m in _MOUNTS.items()}

# (from, to, probability that a buyer in `from` comes back for `to`)
_JOURNEYS: tuple[tuple[str, str, float], ...] = (
    ("Photography > Cameras", "Photography > Lenses", 0.6),
    ("Photography > Cameras", "Photography > Tripods", 0.45),
    ("Photography > Cameras", "Electronics > Memory Cards", 0.6),
    ("Shoes > Running Shoes", "Health & Nutrition > Sports Nutrition", 0.65),
    ("Shoes > Trail Running Shoes", "Sports & Outdoors > Hiking Backpacks", 0.65),
    ("Baby > Strollers", "Home Safety & DIY > Child Safety", 0.55),
    ("Baby > Strollers", "Baby > Car Seats", 0.4),
    ("Pets > Dog Food", "Pets > Dog Toys", 0.45),
    ("Sports & Outdoors > Camping Tents", "Sports & Outdoors > Sleeping Bags", 0.55),
    ("Computers > Laptops", "Computers > Laptop Bags", 0.5),
    ("Computers > Laptops", "Electronics > Headphones", 0.6),
    ("Home & Kitchen > Coffee Machines", "Grocery > Coffee & Tea", 0.65),
)
PLANTED_JOURNEYS: list[tuple[str, str]] = [(f, t) for f, t, _ in _JOURNEYS]

_PROFILE_PHRASES = {
    "Electronics": ("Tech enthusiast who likes good headphones and gadgets",
                    "Always looking for the latest phone and smart gadgets",
                    "Music lover, noise cancelling is a must on my commute"),
    "Photography": ("Amateur photographer upgrading my kit", "I shoot landscapes and wildlife on weekends",
                    "Learning portrait photography and video for my travel vlog"),
    "Computers": ("Software developer working from home", "Student who needs a reliable laptop for university",
                  "PC gamer building a better desk setup"),
    "Fashion": ("I like simple, well-made clothes for the city", "Looking for a warm waterproof jacket for winter commutes",
                "Refreshing my wardrobe for summer holidays"),
    "Shoes": ("I love trail running and hiking in the mountains", "Training for my first marathon",
              "Sneaker fan who walks everywhere in the city"),
    "Sports & Outdoors": ("Weekend camper and backpacker", "I love trail running and hiking in the mountains",
                          "Cycling to work every day and doing gravel rides on weekends"),
    "Health & Nutrition": ("Gym regular who tracks protein and recovery", "Trying to eat healthier and take my vitamins",
                           "Endurance athlete fuelling long runs and rides"),
    "Baby": ("New parent looking for safe baby gear", "Expecting our first child this spring",
             "Parent of a toddler who gets into everything"),
    "Home & Kitchen": ("Home cook who loves good coffee", "Just moved into a new flat and setting up the kitchen",
                       "I bake bread every weekend"),
    "Home Safety & DIY": ("DIY hobbyist renovating an old house", "Making our home safer for the kids",
                          "Setting up smart security cameras at home"),
    "Beauty": ("Skincare fan with sensitive skin", "I enjoy trying new makeup and hair tools",
               "Looking for a signature fragrance"),
    "Books": ("Avid reader of novels and travel guides", "I collect cookbooks and photography books",
              "Reading up on parenting before the baby arrives"),
    "Toys": ("Buying gifts for my kids and nephews", "Parent looking for creative toys for a six year old",
             "Board game nights with friends every week"),
    "Pets": ("Dog owner with an energetic labrador", "Cat lover with two indoor cats",
             "I take my dog running and hiking with me"),
    "Grocery": ("Coffee snob who likes single-origin beans", "I buy healthy snacks for hikes and the office",
                "Stocking up on pantry staples for a big family"),
}

_OPENERS = ("made for", "designed for", "built for", "a great choice for", "ideal for")


# ---- helpers -----------------------------------------------------------------------------------


def _split(spec: str) -> list[str]:
    """'a|b|c' → ['a', 'b', 'c']; '' → ['']."""
    return spec.split("|")


def _parse_brands(spec: str) -> list[tuple[str, list[str]]]:
    """'Sony:Alpha A#/ZV-E##|Canon' → [('Sony', ['Alpha A#', 'ZV-E##']), ('Canon', [''])]."""
    out = []
    for part in _split(spec):
        brand, _, series = part.partition(":")
        out.append((brand, series.split("/") if series else [""]))
    return out


def _fill_digits(rng: np.random.Generator, text: str) -> str:
    """Replace each run of '#' with a number of that many digits (1-9, 10-59, 100-999, ...)."""
    def number(m: re.Match[str]) -> str:
        n = len(m.group())
        lo, hi = (1, 10) if n == 1 else ((10, 60) if n == 2 else (10 ** (n - 1), 10**n))
        return str(int(rng.integers(lo, hi)))

    return re.sub(r"#+", number, text)


def _tidy(title: str) -> str:
    """Collapse the gaps left by empty template parts."""
    title = re.sub(r"\s+", " ", title).replace(" ,", ",").replace("()", "")
    title = re.sub(r",\s*,", ",", title).replace("(, ", "(").replace(", )", ")")
    return title.strip(" ,")


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _charm(price: float) -> float:
    """Shop-style prices: 7.49, 59.99, 1,249.99."""
    if price < 20:
        value = np.ceil(price * 2) / 2 - 0.01
    elif price < 300:
        value = np.ceil(price) - 0.01
    else:
        value = np.ceil(price / 10) * 10 - 0.01
    return round(float(max(value, 0.99)), 2)


def _describe(rng: np.random.Generator, sub: _Sub, brand: str) -> str:
    """1-3 sentences: what the item is, what it is for, one feature, maybe a second use."""
    uses = [u for u in _split(sub.uses) if u]
    feats = [f for f in _split(sub.feats) if f]
    first = int(rng.integers(len(uses)))
    article = "An" if sub.noun[0].lower() in "aeiou" else "A"
    parts = [f"{article} {sub.noun} from {brand}, {_pick(rng, list(_OPENERS))} {uses[first]}."]
    if feats and rng.random() < 0.85:
        parts.append(_pick(rng, feats))
    if len(uses) > 1 and rng.random() < 0.5:
        parts.append(f"Also a good fit for {uses[(first + 1 + int(rng.integers(len(uses) - 1))) % len(uses)]}.")
    return " ".join(parts)


# ---- catalogue ---------------------------------------------------------------------------------


@dataclass
class _Catalog:
    """Items in generation order (grouped by sub-category) plus the arrays the simulation needs."""

    frame: pd.DataFrame  # item_id, title, category, description, brand, price (generation order)
    sub: np.ndarray  # sub-category index per item
    compat: np.ndarray  # brand, or the camera brand a lens mounts on (for matching pairs)
    active: np.ndarray  # bool: has behaviour (False for new items)
    sample_key: np.ndarray  # sorted: sub index + Zipf CDF within the sub, over active items
    sample_item: np.ndarray  # item index for each sample_key entry
    buy_factor: np.ndarray  # cheaper items in a sub convert a little better


def _items_per_sub(rng: np.random.Generator, n_items: int) -> np.ndarray:
    """Split n_items over the sub-categories by weight (with noise); at least 8 each, so a tiny
    n_items (under ~520) yields a few more items than asked."""
    w = np.array([s.weight for s in _CATALOG]) * rng.lognormal(0.0, 0.2, len(_CATALOG))
    raw = w / w.sum() * n_items
    counts = np.maximum(np.floor(raw).astype(int), 8)
    extra = max(0, n_items - int(counts.sum()))  # largest remainders first
    counts[np.argsort(-(raw - np.floor(raw)), kind="stable")[: extra % len(counts)]] += 1
    return counts + extra // len(counts)


def _make_item(rng: np.random.Generator, sub: _Sub, brands: list[tuple[str, list[str]]],
               tier: np.ndarray, seen: set[str]) -> tuple[str, str, str, float]:
    """One unique item: (title, brand, compat key, price)."""
    a, c, d = _split(sub.a), _split(sub.c), _split(sub.d)
    for _ in range(40):
        b = int(rng.integers(len(brands)))
        brand, series = brands[b]
        cc = _pick(rng, c)
        if cc in _MOUNT_OWNER and brand in _MOUNTS:
            cc = _MOUNTS[brand]
        fields = {"b": brand, "s": _fill_digits(rng, _pick(rng, series)), "a": _pick(rng, a), "c": cc,
                  "d": _pick(rng, d)}
        title = _tidy(sub.title.format(**fields))
        if title not in seen:
            break
    else:  # a crowded sub-category: sell the same thing in packs
        title = next(f"{title} ({k}-Pack)" for k in range(2, 10_000) if f"{title} ({k}-Pack)" not in seen)
    seen.add(title)
    lo, hi = sub.price
    base = lo * (hi / lo) ** rng.beta(1.4, 2.2) * tier[b]
    price = _charm(min(max(base, lo * 0.9), hi * 1.15))
    return title, brand, _MOUNT_OWNER.get(cc, brand), price


def _build_catalog(rng: np.random.Generator, n_items: int) -> _Catalog:
    """Titles, descriptions, prices; ids shuffled over the catalogue; ~3 % new items; Zipf sampler."""
    counts = _items_per_sub(rng, n_items)
    rows: list[tuple[str, str, str, str, float, str]] = []
    subs: list[int] = []
    seen: set[str] = set()
    for j, (sub, n) in enumerate(zip(_CATALOG, counts)):
        brands = _parse_brands(sub.brands)
        tier = rng.uniform(0.85, 1.25, len(brands))
        for _ in range(n):
            title, brand, compat, price = _make_item(rng, sub, brands, tier, seen)
            rows.append((title, f"{sub.top} > {sub.name}", _describe(rng, sub, brand), brand, price, compat))
            subs.append(j)
    frame = pd.DataFrame(rows, columns=["title", "category", "description", "brand", "price", "compat"])
    n = len(frame)
    frame.insert(0, "item_id", [f"P{k + 1:06d}" for k in rng.permutation(n)])
    sub_arr = np.array(subs)
    active = np.ones(n, dtype=bool)
    active[rng.choice(n, size=max(1, round(0.03 * n)), replace=False)] = False
    key, item = _zipf_sampler(rng, sub_arr, active)
    return _Catalog(frame=frame.drop(columns="compat"), sub=sub_arr, compat=frame["compat"].to_numpy(),
                    active=active, sample_key=key, sample_item=item,
                    buy_factor=_buy_factor(sub_arr, frame["price"].to_numpy()))


def _zipf_sampler(rng: np.random.Generator, sub: np.ndarray, active: np.ndarray,
                  exponent: float = 1.05) -> tuple[np.ndarray, np.ndarray]:
    """Sorted keys `sub + CDF` so that searchsorted(keys, sub + u) draws a Zipf-popular item of sub."""
    keys, items = [], []
    for j in range(len(_CATALOG)):
        idx = np.flatnonzero((sub == j) & active)
        idx = idx[rng.permutation(len(idx))]  # popularity rank order
        p = 1.0 / np.arange(1, len(idx) + 1) ** exponent
        cdf = np.cumsum(p) / p.sum()
        cdf[-1] = 1.0
        keys.append(j + cdf)
        items.append(idx)
    return np.concatenate(keys), np.concatenate(items)


def _buy_factor(sub: np.ndarray, price: np.ndarray) -> np.ndarray:
    """(median price of the sub / price) ** 0.25, clipped: cheap items convert a little more."""
    med = pd.Series(price).groupby(sub).transform("median").to_numpy()
    return np.clip((med / price) ** 0.25, 0.7, 1.4)


def _sample_items(rng: np.random.Generator, cat: _Catalog, sub: np.ndarray) -> np.ndarray:
    """One Zipf-popular active item of each given sub-category."""
    pos = np.searchsorted(cat.sample_key, sub + rng.random(len(sub)), side="left")
    return cat.sample_item[np.minimum(pos, len(cat.sample_item) - 1)]


# ---- users -------------------------------------------------------------------------------------


@dataclass
class _Users:
    """Per-user arrays; `interests` is padded with -1 beyond `n_interests`."""

    ids: np.ndarray
    interests: np.ndarray  # n_users × 3 top-category indices
    n_interests: np.ndarray
    cold: np.ndarray  # bool: profile text, no events
    sessions: np.ndarray  # organic sessions per user (0 for cold)
    join_day: np.ndarray


def _tops() -> list[str]:
    return list(dict.fromkeys(s.top for s in _CATALOG))


def _build_users(rng: np.random.Generator, n_users: int, days: int) -> _Users:
    """Interests (1-3 tops, weighted, no repeats), heavy-tailed activity, join day, cold starters."""
    tops = _tops()
    w = np.array([_TOP_WEIGHT.get(t, 1.0) for t in tops])
    gumbel = np.log(w) - np.log(-np.log(rng.random((n_users, len(tops)))))
    interests = np.argsort(-gumbel, axis=1)[:, :3]
    n_int = rng.choice([1, 2, 3], size=n_users, p=[0.35, 0.4, 0.25])
    interests = np.where(np.arange(3) < n_int[:, None], interests, -1)
    cold = np.zeros(n_users, dtype=bool)
    cold[rng.choice(n_users, size=min(50, n_users // 20), replace=False)] = True
    sessions = np.clip(np.round(rng.lognormal(np.log(11.5), 1.0, n_users)), 1, 400).astype(int)
    sessions[cold] = 0
    join = np.where(rng.random(n_users) < 0.55, 0, rng.integers(0, max(1, int(days * 0.8)), n_users))
    ids = np.array([f"U{k + 1:05d}" for k in range(n_users)])
    return _Users(ids=ids, interests=interests, n_interests=n_int, cold=cold, sessions=sessions, join_day=join)


def _profile_texts(rng: np.random.Generator, users: _Users) -> np.ndarray:
    """Text for every cold starter and ~200 active users, from their first one or two interests."""
    tops = _tops()
    texts = np.full(len(users.ids), "", dtype=object)
    active = np.flatnonzero(~users.cold)
    chosen = np.concatenate([np.flatnonzero(users.cold),
                             rng.choice(active, size=min(200, len(active) // 10), replace=False)])
    for u in np.sort(chosen):
        k = min(int(users.n_interests[u]), 1 + int(rng.random() < 0.4))
        phrases = [_pick(rng, list(_PROFILE_PHRASES[tops[t]])) for t in users.interests[u, :k]]
        texts[u] = ". ".join(dict.fromkeys(phrases)) + "."
    return texts


# ---- behaviour ---------------------------------------------------------------------------------


@dataclass
class _Sessions:
    """Parallel arrays, one entry per browsing session."""

    user: np.ndarray
    start: np.ndarray  # seconds since the window start
    sub: np.ndarray
    first_item: np.ndarray  # -1, or an item the session opens with (a journey's matching item)
    boosted: np.ndarray  # bool: a journey follow-up, with more intent to buy


def _day_cdf(days: int, start: pd.Timestamp) -> np.ndarray:
    """Cumulative weights of the days: weekend bump and a gentle upward trend."""
    weekday = (start.dayofweek + np.arange(days)) % 7
    w = np.array([1.0, 0.95, 0.95, 1.0, 1.05, 1.25, 1.3])[weekday] * np.linspace(0.9, 1.15, days)
    return np.cumsum(w) / w.sum()


def _hour_weights() -> np.ndarray:
    """Quiet nights, a lunch bump and an evening peak."""
    h = np.arange(24)
    w = 0.15 + 0.6 * np.exp(-((h - 12.5) / 2.0) ** 2) + 1.0 * np.exp(-((h - 20.5) / 2.2) ** 2) + 0.3 * (h >= 8)
    return w / w.sum()


def _session_subs(rng: np.random.Generator, users: _Users, s_user: np.ndarray) -> np.ndarray:
    """Sub-category of each session: mostly one of the user's interests, sometimes anything."""
    tops = _tops()
    by_top = [[j for j, s in enumerate(_CATALOG) if s.top == t] for t in tops]
    width = max(len(b) for b in by_top)
    table = np.zeros((len(tops), width), dtype=int)
    cum = np.ones((len(tops), width))
    for t, members in enumerate(by_top):
        w = np.array([_CATALOG[j].weight for j in members])
        table[t, : len(members)] = members
        table[t, len(members):] = members[-1]
        cum[t, : len(members)] = np.cumsum(w) / w.sum()
    slot = (rng.random(len(s_user)) * users.n_interests[s_user]).astype(int)
    top = users.interests[s_user, slot]
    col = (rng.random(len(s_user))[:, None] > cum[top]).sum(axis=1)
    sub = table[top, np.minimum(col, width - 1)]
    g = np.array([s.weight * _TOP_WEIGHT.get(s.top, 1.0) for s in _CATALOG])
    explore = rng.random(len(s_user)) < 0.12
    sub[explore] = rng.choice(len(_CATALOG), size=int(explore.sum()), p=g / g.sum())
    return sub


def _organic_sessions(rng: np.random.Generator, users: _Users, days: int, start: pd.Timestamp) -> _Sessions:
    """All everyday sessions: when (after joining, weekly rhythm, hour of day) and where."""
    s_user = np.repeat(np.arange(len(users.ids)), users.sessions)
    cdf = _day_cdf(days, start)
    before = np.concatenate([[0.0], cdf])[users.join_day[s_user]]
    day = np.searchsorted(cdf, before + rng.random(len(s_user)) * (1.0 - before), side="left")
    hour = rng.choice(24, size=len(s_user), p=_hour_weights())
    t = np.minimum(day, days - 1) * DAY + hour * 3600 + rng.integers(0, 3600, len(s_user))
    n = len(s_user)
    return _Sessions(user=s_user, start=t, sub=_session_subs(rng, users, s_user),
                     first_item=np.full(n, -1), boosted=np.zeros(n, dtype=bool))


def _session_events(rng: np.random.Generator, cat: _Catalog, s: _Sessions) -> pd.DataFrame:
    """Views (distinct items per session), then carts and purchases of some viewed items."""
    n_views = np.minimum(rng.geometric(0.42, len(s.user)), 10)
    sess = np.repeat(np.arange(len(s.user)), n_views)
    first = np.concatenate([[0], np.cumsum(n_views)[:-1]])
    pos = np.arange(len(sess)) - first[sess]
    item = _sample_items(rng, cat, s.sub[sess])
    opener = (pos == 0) & (s.first_item[sess] >= 0)
    item[opener] = s.first_item[sess][opener]
    gaps = np.where(pos == 0, 0, rng.integers(20, 240, len(sess)))
    offset = np.cumsum(gaps)
    t_view = s.start[sess] + offset - offset[first[sess]]
    _, keep = np.unique(sess.astype(np.int64) * len(cat.sub) + item, return_index=True)
    keep = np.sort(keep)
    sess, item, t_view = sess[keep], item[keep], t_view[keep]
    boost = s.boosted[sess]
    p_cart = np.clip(0.235 * cat.buy_factor[item] * np.where(boost, 1.6, 1.0), 0, 0.9)
    cart = rng.random(len(item)) < p_cart
    t_cart = t_view + rng.integers(15, 400, len(item))
    buy = np.where(cart, rng.random(len(item)) < np.where(boost, 0.7, 0.56),
                   rng.random(len(item)) < 0.04 * cat.buy_factor[item])
    wait = np.where(rng.random(len(item)) < 0.85, rng.integers(30, 1800, len(item)),
                    rng.integers(3600, 2 * DAY, len(item)))
    t_buy = np.where(cart, t_cart, t_view) + wait
    user = s.user[sess]
    return pd.DataFrame({
        "user": np.concatenate([user, user[cart], user[buy]]),
        "item": np.concatenate([item, item[cart], item[buy]]),
        "type": np.concatenate([np.full(len(item), VIEW), np.full(int(cart.sum()), CART),
                                np.full(int(buy.sum()), PURCHASE)]),
        "t": np.concatenate([t_view, t_cart[cart], t_buy[buy]]),
    })


def _sub_index(path: str) -> int:
    top, name = path.split(" > ")
    return next(j for j, s in enumerate(_CATALOG) if s.top == top and s.name == name)


def _matching_items(cat: _Catalog, src: int, dst: int) -> np.ndarray:
    """For every active item of sub `src`, its partner in sub `dst` (-1 elsewhere).

    Same brand (or the lens mount of a camera's brand) when there is one, else the item at the same
    price percentile, so expensive bodies pair with expensive lenses.
    """
    price = cat.frame["price"].to_numpy()
    pair = np.full(len(cat.sub), -1)
    cand = np.flatnonzero((cat.sub == dst) & cat.active)
    cand = cand[np.argsort(price[cand], kind="stable")]
    src_prices = np.sort(price[(cat.sub == src) & cat.active])
    for i in np.flatnonzero((cat.sub == src) & cat.active):
        pool = cand[cat.compat[cand] == cat.compat[i]]
        pool = pool if len(pool) else cand
        pct = np.searchsorted(src_prices, price[i]) / max(1, len(src_prices) - 1)
        pair[i] = pool[min(int(round(pct * (len(pool) - 1))), len(pool) - 1)]
    return pair


def _journey_sessions(rng: np.random.Generator, cat: _Catalog, events: pd.DataFrame) -> _Sessions:
    """Follow-up sessions: after a user's first purchase in a journey's `from` sub-category, with
    the journey's probability, a session in its `to` sub-category a few hours to weeks later that
    usually opens with the matching item."""
    buys = events[events["type"] == PURCHASE].sort_values(["t", "user", "item"], kind="stable")
    parts: list[tuple[np.ndarray, ...]] = []
    for src_path, dst_path, prob in _JOURNEYS:
        src, dst = _sub_index(src_path), _sub_index(dst_path)
        first = buys[cat.sub[buys["item"].to_numpy()] == src].drop_duplicates("user")
        first = first[rng.random(len(first)) < prob]
        n = len(first)
        delay = 1800 + rng.exponential(4 * DAY, n).astype(np.int64)
        matching = _matching_items(cat, src, dst)[first["item"].to_numpy()]
        opener = np.where(rng.random(n) < 0.75, matching, -1)
        parts.append((first["user"].to_numpy(), first["t"].to_numpy() + delay, np.full(n, dst), opener))
    user, start, sub, opener = (np.concatenate(x) for x in zip(*parts))
    return _Sessions(user=user, start=start, sub=sub, first_item=opener, boosted=np.ones(len(user), dtype=bool))


# ---- assembly ----------------------------------------------------------------------------------


def _events_frame(cat: _Catalog, users: _Users, raw: pd.DataFrame, start: pd.Timestamp, days: int) -> pd.DataFrame:
    """Integer events → the public frame, inside the window, time-ordered, without duplicates."""
    raw = raw[(raw["t"] >= 0) & (raw["t"] < days * DAY)]
    raw = raw.drop_duplicates(["user", "item", "type", "t"]).sort_values(["t", "user", "type", "item"], kind="stable")
    base = start.as_unit("us").value // 1000  # µs since the epoch
    ts = pd.to_datetime(base + raw["t"].to_numpy(np.int64) * 1_000_000, unit="us", utc=True)
    return pd.DataFrame({
        "user_id": users.ids[raw["user"].to_numpy()],
        "item_id": cat.frame["item_id"].to_numpy()[raw["item"].to_numpy()],
        "event_type": EVENT_NAMES[raw["type"].to_numpy()],
        "timestamp": ts,
    }).reset_index(drop=True)


def generate(seed: int = 7, *, n_items: int = 3200, n_users: int = 2200, days: int = 120,
             end: str = "2026-10-31", progress: Callable[[float, str], None] | None = None) -> DemoShop:
    """Build the demo shop. Events span the `days` days up to and including the day `end` (UTC)."""
    report = progress or (lambda _f, _m: None)
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(end, tz="UTC").normalize() + pd.Timedelta(days=1) - pd.Timedelta(days=days)

    report(0.0, "building the catalogue")
    cat = _build_catalog(rng, n_items)
    report(0.3, "creating users")
    users = _build_users(rng, n_users, days)
    texts = _profile_texts(rng, users)
    report(0.45, "simulating sessions")
    organic = _session_events(rng, cat, _organic_sessions(rng, users, days, start))
    report(0.75, "planting cross-category journeys")
    organic = organic[organic["t"] < days * DAY]
    follow = _session_events(rng, cat, _journey_sessions(rng, cat, organic))
    events = _events_frame(cat, users, pd.concat([organic, follow], ignore_index=True), start, days)

    items = cat.frame.sort_values("item_id", kind="stable").reset_index(drop=True)
    items["price"] = items["price"].astype(float)
    users_frame = pd.DataFrame({"user_id": users.ids, "profile_text": texts.astype(str)})
    report(1.0, f"{len(items):,} items, {len(users_frame):,} users, {len(events):,} events")
    return DemoShop(items=items, events=events, users=users_frame)


def build_demo(
    settings,
    *,
    seed: int = 7,
    force: bool = False,
    encode: bool = True,
    train: bool = True,
    progress: Callable[[float, str], None] | None = None,
) -> dict:
    """Generate the demo shop into `settings.db_path`: ingest, embed item texts, train a first run.

    The database is built under a temporary name and moved into place at the end, so an interrupted
    build never leaves a half-built demo behind.
    """
    from pathlib import Path

    from .store import Store, connect

    def part(lo: float, hi: float):
        return (lambda f, m: progress(lo + (hi - lo) * f, m)) if progress else None

    path = Path(settings.db_path)
    if force and path.exists():
        # the one-writer rule: a file another process holds (the dashboard) is not replaced under it;
        # found out now, before minutes of building (and checked again, holding it, at the swap)
        connect(path).close()
    tmp = path.with_name(path.name + ".building")
    for leftover in (tmp, Path(str(tmp) + ".wal")):
        leftover.unlink(missing_ok=True)
    shop = generate(seed, progress=part(0.0, 0.1))
    tmp_settings = settings.replace(db_path=tmp)
    with Store(tmp) as store:
        store.ingest_frames(items=shop.items, events=shop.events, users=shop.users, settings=settings,
                            progress=part(0.1, 0.2), source="demo")
        if encode:
            from .encoder import Encoder, encode_items

            enc = Encoder(settings.model, device=settings.device, precision=settings.precision,
                          batch_size=settings.batch_size)
            encode_items(store, enc, progress=part(0.2, 0.4))
        if train:
            from .train import train as train_run

            train_run(store, tmp_settings, name="demo-initial", project=True, progress=part(0.4, 1.0))
        stats = store.stats()
    holder = connect(path) if force and path.exists() else None  # nobody else may open it mid-swap
    try:
        if force:
            path.unlink(missing_ok=True)
            Path(str(path) + ".wal").unlink(missing_ok=True)
            import shutil

            shutil.rmtree(settings.artefact_dir, ignore_errors=True)
        tmp.rename(path)
        _move_artefacts(tmp_settings.artefact_dir, settings.artefact_dir, path)
    finally:
        if holder is not None:
            holder.close()
    return stats


def _move_artefacts(src, dst, db_path) -> None:
    """Artefacts of the runs built under the temporary name follow the database to its final name (runs
    record their folders relative to the artefacts folder, so nothing in the database changes)."""
    if src.exists():
        src.rename(dst)
