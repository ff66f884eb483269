"""flow-rank (seed 003, USGS/EcoSHEDS Flow Photo Explorer): a ResNet-18 RankNet learns, from annotated
pairs of time-lapse photos of one stream, a score that ranks the photos by streamflow."""
