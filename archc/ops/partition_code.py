"""The helper classes generated code holds for MaxViT's partition attention (archc/ops/partition.py),
with torchvision's maxvit.py arithmetic, state_dict and submodules (its partition and swap
modules are leaves a forward hook sees). Needs DropPath (archc/ops/shape.py) before it."""

PARTITION_ATTENTION = '''
class RelativePositionAttention(nn.Module):
    """Multi-head attention over [N, G, P, C]: P positions of a side x side window in each of G
    groups, with a learned bias per relative position. As torchvision's MaxViT, k is scaled by
    1 / sqrt(C), the whole feature size."""

    def __init__(self, dim, head_dim, side):
        super().__init__()
        self.num_heads, self.head_dim, self.side = dim // head_dim, head_dim, side
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.merge = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.empty((2 * side - 1) ** 2, self.num_heads))
        rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
        rows, cols = rows.flatten(), cols.flatten()
        index = (rows[:, None] - rows[None, :] + side - 1) * (2 * side - 1) + cols[:, None] - cols[None, :] + side - 1
        self.register_buffer("relative_position_index", index)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x):
        n, g, p, c = x.shape
        q, k, v = (t.reshape(n, g, p, self.num_heads, self.head_dim).transpose(2, 3)
                   for t in self.to_qkv(x).chunk(3, dim=-1))
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(p, p, -1)
        attn = F.softmax(q.matmul((k * c ** -0.5).transpose(-2, -1)) + bias.permute(2, 0, 1), dim=-1)
        return self.merge(attn.matmul(v).transpose(2, 3).reshape(n, g, p, c))


class WindowPartition(nn.Module):
    """[N, C, H, W] -> [N, H/p * W/p, p * p, C]: the p x p windows, each a sequence."""

    def forward(self, x, p: int):
        n, c, h, w = x.shape
        return x.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(n, (h // p) * (w // p), p * p, c)


class WindowDepartition(nn.Module):
    """The inverse of WindowPartition, for rows x cols windows of p x p."""

    def forward(self, x, p: int, rows: int, cols: int):
        n, c = x.shape[0], x.shape[-1]
        return x.reshape(n, rows, cols, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(n, c, rows * p, cols * p)


class SwapAxes(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return torch.swapaxes(x, self.a, self.b)


class PartitionAttention(nn.Module):
    """MaxViT's block ('window') or grid ('grid') attention on [N, C, H, W]: the map cut into
    side x side windows, or into a side x side grid of positions H/side apart, attention within
    each window or across each grid, then an MLP, each added through stochastic depth."""

    def __init__(self, dim, head_dim, side, kind, mlp_ratio=4, attention_dropout=0.0, mlp_dropout=0.0,
                 p_stochastic_dropout=0.0):
        super().__init__()
        self.side, self.kind = side, kind
        self.partition_op = WindowPartition()
        self.departition_op = WindowDepartition()
        self.partition_swap = SwapAxes(-2, -3) if kind == "grid" else nn.Identity()
        self.departition_swap = SwapAxes(-2, -3) if kind == "grid" else nn.Identity()
        self.attn_layer = nn.Sequential(
            nn.LayerNorm(dim), RelativePositionAttention(dim, head_dim, side), nn.Dropout(attention_dropout))
        self.mlp_layer = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim),
            nn.Dropout(mlp_dropout))
        self.stochastic_dropout = DropPath(p_stochastic_dropout)

    def forward(self, x):
        h, w = x.shape[-2:]
        p = self.side if self.kind == "window" else h // self.side      # pixels per window side
        x = self.partition_swap(self.partition_op(x, p))
        x = x + self.stochastic_dropout(self.attn_layer(x))
        x = x + self.stochastic_dropout(self.mlp_layer(x))
        return self.departition_op(self.departition_swap(x), p, h // p, w // p)
'''
