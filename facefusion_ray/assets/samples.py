"""Sample photos with real faces, shipped inside wheels on the package index."""

from facefusion_ray.assets.fetch import Asset, WheelMemberSource

T1_GROUP_PHOTO = Asset(
    name="t1 group photo (six people)",
    filename="t1.jpg",
    sha256="47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
    sources=(WheelMemberSource("insightface==2.1", "insightface/data/images/t1.jpg"),),
)

TOM_HANKS_PHOTO = Asset(
    name="Tom Hanks portrait",
    filename="Tom_Hanks_54745.png",
    sha256="8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083",
    sources=(WheelMemberSource("insightface==2.1", "insightface/data/images/Tom_Hanks_54745.png"),),
)

# The scikit-image wheel is platform specific; the member is the same bytes in every build.
ASTRONAUT_PHOTO = Asset(
    name="astronaut portrait (Eileen Collins)",
    filename="astronaut.png",
    sha256="88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    sources=(WheelMemberSource("scikit-image==0.26.0", "skimage/data/astronaut.png"),),
)

SAMPLE_PHOTOS: tuple[Asset, ...] = (T1_GROUP_PHOTO, TOM_HANKS_PHOTO, ASTRONAUT_PHOTO)
