"""Data tables for Vietnamese speech normalisation: abbreviations, units, letter names.

Data, not code: adding an abbreviation is a one-line change here, and a commune adds its own
(place names, local bodies) through the ``lexicon`` argument of
:func:`broadcasts.normalize.normalize_vi` without touching this file. Abbreviations are
matched whole-word and case-sensitively ("CA" is not "ca").
"""

from __future__ import annotations

#: Administrative and common abbreviations seen in commune announcements.
ABBREVIATIONS: dict[str, str] = {
    # Party, state and mass organisations
    "UBND": "ủy ban nhân dân",
    "HĐND": "hội đồng nhân dân",
    "UBMTTQ": "ủy ban mặt trận tổ quốc",
    "MTTQVN": "mặt trận tổ quốc Việt Nam",
    "MTTQ": "mặt trận tổ quốc",
    "ĐBQH": "đại biểu quốc hội",
    "QH": "quốc hội",
    "BCH": "ban chấp hành",
    "BCĐ": "ban chỉ đạo",
    "BQL": "ban quản lý",
    "BTV": "ban thường vụ",
    "TW": "trung ương",
    "TƯ": "trung ương",
    "HLHPN": "hội liên hiệp phụ nữ",
    "LHPN": "liên hiệp phụ nữ",
    "HND": "hội nông dân",
    "HCCB": "hội cựu chiến binh",
    "CCB": "cựu chiến binh",
    "ĐTN": "đoàn thanh niên",
    "TNCS": "thanh niên cộng sản",
    "HTX": "hợp tác xã",
    "CLB": "câu lạc bộ",
    "CHXHCN": "cộng hòa xã hội chủ nghĩa",
    "XHCN": "xã hội chủ nghĩa",
    "LHQ": "liên hợp quốc",
    # Administrative units and places
    "TP": "thành phố",
    "TP.": "thành phố",
    "TX": "thị xã",
    "TDP": "tổ dân phố",
    "KDC": "khu dân cư",
    "KCN": "khu công nghiệp",
    "QL": "quốc lộ",
    "TPHCM": "thành phố Hồ Chí Minh",
    "TP.HCM": "thành phố Hồ Chí Minh",
    "HCM": "Hồ Chí Minh",
    "VN": "Việt Nam",
    # Documents
    "QĐ": "quyết định",
    "NĐ": "nghị định",
    "NQ": "nghị quyết",
    "CP": "chính phủ",
    "TTg": "thủ tướng",
    "KH": "kế hoạch",
    "CV": "công văn",
    "CT": "chỉ thị",
    "BC": "báo cáo",
    # Administrative procedures, digital transformation, identity
    "TTHC": "thủ tục hành chính",
    "CĐS": "chuyển đổi số",
    "CNTT": "công nghệ thông tin",
    "DVC": "dịch vụ công",
    "DVCTT": "dịch vụ công trực tuyến",
    "CSDL": "cơ sở dữ liệu",
    "CCCD": "căn cước công dân",
    "CMND": "chứng minh nhân dân",
    "VNeID": "vê en e ai đi",
    "SĐT": "số điện thoại",
    "ĐT": "điện thoại",
    "KT-XH": "kinh tế xã hội",
    "KTXH": "kinh tế xã hội",
    "NTM": "nông thôn mới",
    # Health and social insurance
    "BHYT": "bảo hiểm y tế",
    "BHXH": "bảo hiểm xã hội",
    "BHTN": "bảo hiểm thất nghiệp",
    "TYT": "trạm y tế",
    "TTYT": "trung tâm y tế",
    "BV": "bệnh viện",
    "KCB": "khám chữa bệnh",
    "ATTP": "an toàn thực phẩm",
    "VSATTP": "vệ sinh an toàn thực phẩm",
    "LMLM": "lở mồm long móng",
    "DTLCP": "dịch tả lợn châu Phi",
    "COVID-19": "cô vít mười chín",
    "Covid-19": "cô vít mười chín",
    "covid-19": "cô vít mười chín",
    "COVID": "cô vít",
    "Covid": "cô vít",
    # Schools
    "THCS": "trung học cơ sở",
    "THPT": "trung học phổ thông",
    "GDTX": "giáo dục thường xuyên",
    "GD&ĐT": "giáo dục và đào tạo",
    "GDĐT": "giáo dục và đào tạo",
    "MN": "mầm non",
    "TH": "tiểu học",
    # Security, traffic, disasters
    "CSGT": "cảnh sát giao thông",
    "PCCC": "phòng cháy chữa cháy",
    "CNCH": "cứu nạn cứu hộ",
    "ATGT": "an toàn giao thông",
    "TNGT": "tai nạn giao thông",
    "ANTT": "an ninh trật tự",
    "TTATXH": "trật tự an toàn xã hội",
    "PCTT": "phòng chống thiên tai",
    "TKCN": "tìm kiếm cứu nạn",
    "PCTT&TKCN": "phòng chống thiên tai và tìm kiếm cứu nạn",
    "QS": "quân sự",
    "NVQS": "nghĩa vụ quân sự",
    "CAX": "công an xã",
    # Ministries and sectors
    "LĐ-TB&XH": "lao động thương binh và xã hội",
    "LĐTBXH": "lao động thương binh và xã hội",
    "TN&MT": "tài nguyên và môi trường",
    "TNMT": "tài nguyên và môi trường",
    "NN&PTNT": "nông nghiệp và phát triển nông thôn",
    "NNPTNT": "nông nghiệp và phát triển nông thôn",
    "VH-TT": "văn hóa thông tin",
    "VHTT": "văn hóa thông tin",
    "TT&TT": "thông tin và truyền thông",
    "TTTT": "thông tin và truyền thông",
    "EVN": "e vê en",
    "USD": "đô la Mỹ",
    "VNĐ": "đồng",
    "VND": "đồng",
}

#: Multi-word phrases with a fixed reading, applied before number rules.
PHRASES: dict[str, str] = {
    "Đề án 06": "Đề án không sáu",
    "đề án 06": "đề án không sáu",
    "ĐA 06": "Đề án không sáu",
    "và/hoặc": "và hoặc",
}

#: Units read only right after a number ("5 km", "100mm"). Longest first when matching.
UNITS: dict[str, str] = {
    "km/h": "ki lô mét trên giờ",
    "km²": "ki lô mét vuông",
    "km2": "ki lô mét vuông",
    "km": "ki lô mét",
    "m²": "mét vuông",
    "m2": "mét vuông",
    "m³": "mét khối",
    "m3": "mét khối",
    "m/s": "mét trên giây",
    "mm": "mi li mét",
    "cm": "xen ti mét",
    "m": "mét",
    "kg": "ki lô gam",
    "mg": "mi li gam",
    "g": "gam",
    "ha": "héc ta",
    "ml": "mi li lít",
    "°C": "độ xê",
    "ºC": "độ xê",
    "oC": "độ xê",
    "°": "độ",
    "%": "phần trăm",
    "kWh": "ki lô oát giờ",
    "kW": "ki lô oát",
    "MW": "mê ga oát",
    "kV": "ki lô vôn",
    "V": "vôn",
    "đ": "đồng",
    "đồng": "đồng",
    "VNĐ": "đồng",
    "VND": "đồng",
    "vnđ": "đồng",
    "vnd": "đồng",
    "USD": "đô la Mỹ",
}

#: How Vietnamese speakers spell letters inside acronyms ("VNPT" -> "vê en pê tê").
LETTER_NAMES: dict[str, str] = {
    "A": "a", "Ă": "á", "Â": "ớ", "B": "bê", "C": "xê", "D": "dê", "Đ": "đê", "E": "e",
    "Ê": "ê", "F": "ép", "G": "giê", "H": "hát", "I": "i", "J": "gi", "K": "ca", "L": "e lờ",
    "M": "em", "N": "en", "O": "o", "Ô": "ô", "Ơ": "ơ", "P": "pê", "Q": "quy", "R": "e rờ",
    "S": "ét", "T": "tê", "U": "u", "Ư": "ư", "V": "vê", "W": "vê kép", "X": "ích",
    "Y": "i dài", "Z": "dét",
}  # fmt: skip

#: Words after which a roman numeral (or a digit) is a number: "quý II", "khóa XV".
ROMAN_TRIGGERS: tuple[str, ...] = (
    "quý", "khóa", "khoá", "thế kỷ", "thế kỉ", "chương", "phần", "mục", "đợt", "giai đoạn",
    "kỳ họp", "kì họp", "kỳ", "kì", "cấp", "loại", "hạng", "vùng", "khu vực", "tập",
    "phụ lục", "đại hội", "quân khu", "tiểu khu", "phân khu",
)  # fmt: skip

#: Words after which a 3-digit number is a hotline read digit by digit ("gọi 113").
HOTLINE_TRIGGERS: tuple[str, ...] = (
    "gọi", "gọi ngay", "gọi đến", "gọi số", "đường dây nóng", "đường dây nóng số", "hotline",
    "tổng đài", "tổng đài số", "số điện thoại", "điện thoại", "SĐT", "ĐT",
)  # fmt: skip
