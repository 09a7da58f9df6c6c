"""The default specialty code tree (专业分类) a new centre starts from; the centre maintains its own.

Codes are hierarchical by prefix: an expert of "A0101" matches a quota of "A01" or "A". The classes follow
the national evaluation-expert classification in outline (works, goods, services, economic)."""

from __future__ import annotations

DEFAULT_SPECIALTIES: tuple[tuple[str, str | None, str], ...] = (
    ("A", None, "工程 (works)"),
    ("A01", "A", "房屋建筑工程 (building construction)"),
    ("A0101", "A01", "土建 (civil works)"),
    ("A0102", "A01", "装饰装修 (fit-out)"),
    ("A02", "A", "市政工程 (municipal works)"),
    ("A0201", "A02", "道路与桥梁 (roads and bridges)"),
    ("A0202", "A02", "给水排水 (water supply and drainage)"),
    ("A03", "A", "水利工程 (water conservancy)"),
    ("A04", "A", "交通工程 (transport)"),
    ("A05", "A", "机电安装 (mechanical and electrical installation)"),
    ("A0501", "A05", "电气 (electrical)"),
    ("A0502", "A05", "暖通空调 (HVAC)"),
    ("B", None, "货物 (goods)"),
    ("B01", "B", "信息技术设备 (IT equipment)"),
    ("B02", "B", "医疗设备 (medical equipment)"),
    ("B03", "B", "办公设备 (office equipment)"),
    ("B04", "B", "车辆 (vehicles)"),
    ("C", None, "服务 (services)"),
    ("C01", "C", "信息技术服务 (IT services)"),
    ("C02", "C", "物业管理 (property management)"),
    ("C03", "C", "咨询服务 (consulting)"),
    ("D", None, "经济 (economic)"),
    ("D01", "D", "工程造价 (cost engineering)"),
    ("D02", "D", "财务会计 (finance and accounting)"),
    ("D03", "D", "法律 (law)"),
)
