"""NIST StRD nonlinear regression problems with certified values: the fitting tests' and bench's data.

Source: NIST/ITL Statistical Reference Datasets, nonlinear regression
(https://www.itl.nist.gov/div898/strd/nls/nls_main.shtml). The numbers below
were copied from verbatim copies of the .dat files in public repositories; each
problem names the repository and path it was taken from. Nothing is rounded:
data, Start 1, Start 2, certified parameters, certified standard deviations and
the certified residual sum of squares are as printed in the .dat file.

`model` is the NIST formula written in Python/SymPy syntax over `x` and the
parameters `b1..bP`. Levels are NIST's ("lower", "average", "higher").
"""

from typing import NamedTuple


class NistProblem(NamedTuple):
    name: str
    level: str
    model: str
    x: tuple
    y: tuple
    start1: tuple
    start2: tuple
    certified: tuple
    certified_stderr: tuple
    certified_rss: float

    @property
    def parameters(self):
        return tuple(f"b{i + 1}" for i in range(len(self.certified)))


# r-forge/optimizer pkg/nltestprob/inst/probfiles/Misra1a.R (commit 744b6726), the Misra1a.dat text
MISRA1A = NistProblem(
    name="Misra1a",
    level="lower",
    model="b1*(1 - exp(-b2*x))",
    x=(77.6, 114.9, 141.1, 190.8, 239.9, 289.0, 332.8, 378.4, 434.8, 477.3, 536.8, 593.1, 689.1, 760.0),
    y=(10.07, 14.73, 17.94, 23.93, 29.61, 35.18, 40.02, 44.82, 50.76, 55.05, 61.01, 66.40, 75.47, 81.78),
    start1=(500.0, 0.0001),
    start2=(250.0, 0.0005),
    certified=(2.3894212918e02, 5.5015643181e-04),
    certified_stderr=(2.7070075241e00, 7.2668688436e-06),
    certified_rss=1.2455138894e-01,
)

# r-forge/optimizer pkg/nltestprob/inst/probfiles/DanielWood.prb.R (commit 3bd2a966), the DanWood.dat text
DANWOOD = NistProblem(
    name="DanWood",
    level="lower",
    model="b1*x**b2",
    x=(1.309, 1.471, 1.490, 1.565, 1.611, 1.680),
    y=(2.138, 3.421, 3.597, 4.340, 4.882, 5.660),
    start1=(1.0, 5.0),
    start2=(0.7, 4.0),
    certified=(7.6886226176e-01, 3.8604055871e00),
    certified_stderr=(1.8281973860e-02, 5.1726610913e-02),
    certified_rss=4.3173084083e-03,
)

# r-forge/optimizer pkg/nltestprob/inst/probfiles/Misra1b.prb.R (commit 9203004d), the Misra1b.dat text
# (NIST's index lists Misra1b under average difficulty)
MISRA1B = NistProblem(
    name="Misra1b",
    level="average",
    model="b1*(1 - (1 + b2*x/2)**(-2))",
    x=MISRA1A.x,  # the same 14 observations as Misra1a (identical Data block in Misra1b.dat)
    y=MISRA1A.y,
    start1=(500.0, 0.0001),
    start2=(300.0, 0.0002),
    certified=(3.3799746163e02, 3.9039091287e-04),
    certified_stderr=(3.1643950207e00, 4.2547321834e-06),
    certified_rss=7.5464681533e-02,
)

# r-forge/optimizer pkg/nltestprob/inst/probfiles/Thurber.prb.R (commit f3cb3283), the Thurber.dat text
THURBER = NistProblem(
    name="Thurber",
    level="higher",
    model="(b1 + b2*x + b3*x**2 + b4*x**3)/(1 + b5*x + b6*x**2 + b7*x**3)",
    x=(
        -3.067,
        -2.981,
        -2.921,
        -2.912,
        -2.840,
        -2.797,
        -2.702,
        -2.699,
        -2.633,
        -2.481,
        -2.363,
        -2.322,
        -1.501,
        -1.460,
        -1.274,
        -1.212,
        -1.100,
        -1.046,
        -0.915,
        -0.714,
        -0.566,
        -0.545,
        -0.400,
        -0.309,
        -0.109,
        -0.103,
        0.010,
        0.119,
        0.377,
        0.790,
        0.963,
        1.006,
        1.115,
        1.572,
        1.841,
        2.047,
        2.200,
    ),
    y=(
        80.574,
        84.248,
        87.264,
        87.195,
        89.076,
        89.608,
        89.868,
        90.101,
        92.405,
        95.854,
        100.696,
        101.060,
        401.672,
        390.724,
        567.534,
        635.316,
        733.054,
        759.087,
        894.206,
        990.785,
        1090.109,
        1080.914,
        1122.643,
        1178.351,
        1260.531,
        1273.514,
        1288.339,
        1327.543,
        1353.863,
        1414.509,
        1425.208,
        1421.384,
        1442.962,
        1464.350,
        1468.705,
        1447.894,
        1457.628,
    ),
    start1=(1000.0, 1000.0, 400.0, 40.0, 0.7, 0.3, 0.03),
    start2=(1300.0, 1500.0, 500.0, 75.0, 1.0, 0.4, 0.05),
    certified=(
        1.2881396800e03,
        1.4910792535e03,
        5.8323836877e02,
        7.5416644291e01,
        9.6629502864e-01,
        3.9797285797e-01,
        4.9727297349e-02,
    ),
    certified_stderr=(
        4.6647963344e00,
        3.9571156086e01,
        2.8698696102e01,
        5.5675370270e00,
        3.1333340687e-02,
        1.4984928198e-02,
        6.5842344623e-03,
    ),
    certified_rss=5.6427082397e03,
)

# r-forge/optimizer pkg/nltestprob/inst/probfiles/MGH09.R (commit 0bcddc6a), the MGH09.dat text
MGH09 = NistProblem(
    name="MGH09",
    level="higher",
    model="b1*(x**2 + x*b2)/(x**2 + x*b3 + b4)",
    x=(4.0, 2.0, 1.0, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625),
    y=(0.1957, 0.1947, 0.1735, 0.1600, 0.0844, 0.0627, 0.0456, 0.0342, 0.0323, 0.0235, 0.0246),
    start1=(25.0, 39.0, 41.5, 39.0),
    start2=(0.25, 0.39, 0.415, 0.39),
    certified=(1.9280693458e-01, 1.9128232873e-01, 1.2305650693e-01, 1.3606233068e-01),
    certified_stderr=(1.1435312227e-02, 1.9633220911e-01, 8.0842031232e-02, 9.0025542308e-02),
    certified_rss=3.0750560385e-04,
)

# r-forge/optimizer pkg/nltestprob/inst/probfiles/Eckerle4.prb.R (commit 46cc35b7), the Eckerle4.dat text
ECKERLE4 = NistProblem(
    name="Eckerle4",
    level="higher",
    model="(b1/b2)*exp(-0.5*((x - b3)/b2)**2)",
    x=(
        400.0,
        405.0,
        410.0,
        415.0,
        420.0,
        425.0,
        430.0,
        435.0,
        436.5,
        438.0,
        439.5,
        441.0,
        442.5,
        444.0,
        445.5,
        447.0,
        448.5,
        450.0,
        451.5,
        453.0,
        454.5,
        456.0,
        457.5,
        459.0,
        460.5,
        462.0,
        463.5,
        465.0,
        470.0,
        475.0,
        480.0,
        485.0,
        490.0,
        495.0,
        500.0,
    ),
    y=(
        0.0001575,
        0.0001699,
        0.0002350,
        0.0003102,
        0.0004917,
        0.0008710,
        0.0017418,
        0.0046400,
        0.0065895,
        0.0097302,
        0.0149002,
        0.0237310,
        0.0401683,
        0.0712559,
        0.1264458,
        0.2073413,
        0.2902366,
        0.3445623,
        0.3698049,
        0.3668534,
        0.3106727,
        0.2078154,
        0.1164354,
        0.0616764,
        0.0337200,
        0.0194023,
        0.0117831,
        0.0074357,
        0.0022732,
        0.0008800,
        0.0004579,
        0.0002345,
        0.0001586,
        0.0001143,
        0.0000710,
    ),
    start1=(1.0, 10.0, 500.0),
    start2=(1.5, 5.0, 450.0),
    certified=(1.5543827178e00, 4.0888321754e00, 4.5154121844e02),
    certified_stderr=(1.5408051163e-02, 4.6803020753e-02, 4.6800518816e-02),
    certified_rss=1.4635887487e-03,
)

# r-forge/optimizer pkg/nltestprob/inst/probfiles/Ratkowsky3.prb.R (commit 46cc35b7): the Rat43.dat text
# (R's NISTnls names it Ratkowsky3)
RAT43 = NistProblem(
    name="Rat43",
    level="higher",
    model="b1/((1 + exp(b2 - b3*x))**(1/b4))",
    x=(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0),
    y=(
        16.08,
        33.83,
        65.80,
        97.20,
        191.55,
        326.20,
        386.87,
        520.53,
        590.03,
        651.92,
        724.93,
        699.56,
        689.96,
        637.56,
        717.41,
    ),
    start1=(100.0, 10.0, 1.0, 1.0),
    start2=(700.0, 5.0, 0.75, 1.3),
    certified=(6.9964151270e02, 5.2771253025e00, 7.5962938329e-01, 1.2792483859e00),
    certified_stderr=(1.6302297817e01, 2.0828735829e00, 1.9566123451e-01, 6.8761936385e-01),
    certified_rss=8.7864049080e03,
)

# ampl/gsl multifit_nlinear/test_boxbod.c (commit 176694ff): data, both starts (x0a, x0b),
# certified values, sigma and sumsq, as GSL's test copies them from BoxBOD.dat
BOXBOD = NistProblem(
    name="BoxBOD",
    level="higher",
    model="b1*(1 - exp(-b2*x))",
    x=(1.0, 2.0, 3.0, 5.0, 7.0, 10.0),
    y=(109.0, 149.0, 149.0, 191.0, 213.0, 224.0),
    start1=(1.0, 1.0),
    start2=(100.0, 0.75),
    certified=(2.1380940889e02, 5.4723748542e-01),
    certified_stderr=(1.2354515176e01, 1.0455993237e-01),
    certified_rss=1.1680088766e03,
)

PROBLEMS = (MISRA1A, DANWOOD, MISRA1B, THURBER, MGH09, ECKERLE4, RAT43, BOXBOD)
