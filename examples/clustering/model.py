"""Set Transformer modules (Lee et al., 2019), written for this example.

Semantics and state_dict keys follow the paper authors' formulation so that the
Go engine can load the weights by key:

    MAB(dim_Q, dim_K, dim_V, num_heads, ln)
        fc_q: Linear(dim_Q, dim_V)   fc_k: Linear(dim_K, dim_V)
        fc_v: Linear(dim_K, dim_V)   fc_o: Linear(dim_V, dim_V)
        ln0, ln1: LayerNorm(dim_V, eps=1e-5)   (only when ln=True)

        forward(Q, K):
            Q' = fc_q(Q); K' = fc_k(K); V' = fc_v(K)
            split the feature axis into num_heads chunks of dim_V // num_heads,
            stacked head-major along the batch axis
            A_h = softmax(Q'_h K'_h^T / sqrt(dim_V))      # FULL width dim_V
            O   = concat_h(Q'_h + A_h V'_h)
            O   = ln0(O)                    if ln
            O   = O + relu(fc_o(O))
            O   = ln1(O)                    if ln

    SAB(dim_in, dim_out, heads, ln)             key `mab`: MAB(X, X)
    ISAB(dim_in, dim_out, heads, num_inds, ln)  `I` [1, num_inds, dim_out],
        `mab0`: H = mab0(I, X), `mab1`: returns mab1(X, H)
    PMA(dim, heads, num_seeds, ln)              `S` [1, num_seeds, dim],
        `mab`: mab(S, X)

    SetTransformer: enc = [ISAB, ISAB]; dec = [PMA, SAB, SAB, Linear].
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class MAB(nn.Module):
    def __init__(self, dim_Q, dim_K, dim_V, num_heads, ln=False):
        super().__init__()
        if dim_V % num_heads != 0:
            raise ValueError("dim_V must be divisible by num_heads")
        self.dim_V = dim_V
        self.num_heads = num_heads
        self.fc_q = nn.Linear(dim_Q, dim_V)
        self.fc_k = nn.Linear(dim_K, dim_V)
        self.fc_v = nn.Linear(dim_K, dim_V)
        if ln:
            self.ln0 = nn.LayerNorm(dim_V, eps=1e-5)
            self.ln1 = nn.LayerNorm(dim_V, eps=1e-5)
        self.fc_o = nn.Linear(dim_V, dim_V)

    def forward(self, Q, K):
        q = self.fc_q(Q)
        k = self.fc_k(K)
        v = self.fc_v(K)
        b = q.shape[0]
        d = self.dim_V // self.num_heads
        # [B, n, H*d] -> [H*B, n, d], head-major (head h occupies rows h*B..h*B+B-1)
        q_ = torch.cat(q.split(d, 2), 0)
        k_ = torch.cat(k.split(d, 2), 0)
        v_ = torch.cat(v.split(d, 2), 0)
        a = torch.softmax(q_.bmm(k_.transpose(1, 2)) / math.sqrt(self.dim_V), 2)
        o = torch.cat((q_ + a.bmm(v_)).split(b, 0), 2)
        if getattr(self, "ln0", None) is not None:
            o = self.ln0(o)
        o = o + F.relu(self.fc_o(o))
        if getattr(self, "ln1", None) is not None:
            o = self.ln1(o)
        return o


class SAB(nn.Module):
    def __init__(self, dim_in, dim_out, num_heads, ln=False):
        super().__init__()
        self.mab = MAB(dim_in, dim_in, dim_out, num_heads, ln=ln)

    def forward(self, X):
        return self.mab(X, X)


class ISAB(nn.Module):
    def __init__(self, dim_in, dim_out, num_heads, num_inds, ln=False):
        super().__init__()
        self.I = nn.Parameter(torch.empty(1, num_inds, dim_out))
        nn.init.xavier_uniform_(self.I)
        self.mab0 = MAB(dim_out, dim_in, dim_out, num_heads, ln=ln)
        self.mab1 = MAB(dim_in, dim_out, dim_out, num_heads, ln=ln)

    def forward(self, X):
        H = self.mab0(self.I.repeat(X.shape[0], 1, 1), X)
        return self.mab1(X, H)


class PMA(nn.Module):
    def __init__(self, dim, num_heads, num_seeds, ln=False):
        super().__init__()
        self.S = nn.Parameter(torch.empty(1, num_seeds, dim))
        nn.init.xavier_uniform_(self.S)
        self.mab = MAB(dim, dim, dim, num_heads, ln=ln)

    def forward(self, X):
        return self.mab(self.S.repeat(X.shape[0], 1, 1), X)


class SetTransformer(nn.Module):
    def __init__(self, dim_input, num_outputs, dim_output, num_inds=32,
                 dim_hidden=128, num_heads=4, ln=False):
        super().__init__()
        self.enc = nn.Sequential(
            ISAB(dim_input, dim_hidden, num_heads, num_inds, ln=ln),
            ISAB(dim_hidden, dim_hidden, num_heads, num_inds, ln=ln),
        )
        self.dec = nn.Sequential(
            PMA(dim_hidden, num_heads, num_outputs, ln=ln),
            SAB(dim_hidden, dim_hidden, num_heads, ln=ln),
            SAB(dim_hidden, dim_hidden, num_heads, ln=ln),
            nn.Linear(dim_hidden, dim_output),
        )

    def forward(self, X):
        return self.dec(self.enc(X))
